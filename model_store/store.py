"""A versioned model store on a filesystem: save, list, load and promote.

Layout under the store root:

    <name>/versions/<version>/model.skops     the Pipeline, in skops format
    <name>/versions/<version>/manifest.json   checksums, versions, schema, metrics
    <name>/current                            the serving version's number

A version is written into a staging folder and renamed into place, and the
current pointer is replaced with a rename, so no reader sees half of either.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops.io as sio
from sklearn.pipeline import Pipeline

from model_store.exceptions import IntegrityError, ModelNotFoundError
from training.pipeline import input_fields, model_variables

ARTIFACT = "model.skops"
MANIFEST = "manifest.json"
# The only types beyond skops' defaults that a load may build: our own estimators,
# and numpy dtypes (SimpleImputer records the dtype it was fitted on).
TRUSTED_TYPES = (
    "numpy.dtype",
    "training.encoding.ColumnSelector",
    "training.encoding.FixedLevelEncoder",
    "training.parsing.RecordParser",
)


@dataclass(frozen=True)
class LoadedModel:
    """A verified, deserialized model version, ready to score."""

    name: str
    version: int
    pipeline: Pipeline
    manifest: dict[str, Any]

    @property
    def threshold(self) -> float:
        """Return the cutoff at which phat counts as an event."""
        return float(self.manifest["threshold"])


class ModelStore:
    """Versions of named models under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def save(
        self,
        name: str,
        pipeline: Pipeline,
        *,
        threshold: float,
        metrics: Mapping[str, Any],
        data_fingerprint: Mapping[str, Any],
    ) -> int:
        """Write a new version of `name` and return its number; it is not promoted."""
        versions = self._versions_dir(name)
        versions.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=versions))
        try:
            artifact = staging / ARTIFACT
            sio.dump(pipeline, artifact)
            manifest = {
                "name": name,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": {ARTIFACT: _sha256(artifact)},
                "format": "skops",
                "python_version": platform.python_version(),
                "numpy_version": np.__version__,
                "sklearn_version": sklearn.__version__,
                "skops_version": metadata.version("skops"),
                "input_fields": input_fields(pipeline),
                "output_variables": model_variables(pipeline),
                "threshold": float(threshold),
                "metrics": dict(metrics),
                "data_fingerprint": dict(data_fingerprint),
            }
            return self._publish(name, staging, manifest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _publish(self, name: str, staging: Path, manifest: dict[str, Any]) -> int:
        # Concurrent savers race for the next number; the rename decides who wins it.
        # Numbers of incomplete folders are skipped too, never reused.
        while True:
            taken = [int(p.name) for p in self._versions_dir(name).iterdir() if p.name.isdigit()]
            version = max(taken, default=0) + 1
            manifest["version"] = version
            _write_json(staging / MANIFEST, manifest)
            _fsync_dir(staging)
            try:
                os.rename(staging, self._versions_dir(name) / str(version))
            except OSError:
                if (self._versions_dir(name) / str(version)).exists():
                    continue
                raise
            _fsync_dir(self._versions_dir(name))
            return version

    def versions(self, name: str) -> list[int]:
        """Return the complete versions of `name`, oldest first."""
        folder = self._versions_dir(name)
        if not folder.is_dir():
            return []
        return sorted(
            int(entry.name) for entry in folder.iterdir() if entry.name.isdigit() and (entry / MANIFEST).is_file()
        )

    def manifest(self, name: str, version: int) -> dict[str, Any]:
        """Return the manifest of one version."""
        path = self._versions_dir(name) / str(version) / MANIFEST
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelNotFoundError(f"model {name!r} has no version {version}") from None
        except json.JSONDecodeError as exc:
            raise IntegrityError(f"manifest of {name!r} v{version} is not valid JSON: {exc}") from None

    def current(self, name: str) -> int | None:
        """Return the serving version of `name`, or None when none was promoted."""
        try:
            return int((self.root / name / "current").read_text().strip())
        except FileNotFoundError:
            return None

    def promote(self, name: str, version: int) -> None:
        """Make `version` the serving version, atomically."""
        self.verify(name, version)
        pointer = self.root / name / "current"
        fd, tmp = tempfile.mkstemp(prefix=".current-", dir=pointer.parent)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{version}\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, pointer)
        _fsync_dir(pointer.parent)

    def verify(self, name: str, version: int) -> dict[str, Any]:
        """Check every file against the manifest and the runtime; return the manifest."""
        manifest = self.manifest(name, version)
        folder = self._versions_dir(name) / str(version)
        for filename, expected in manifest.get("files", {}).items():
            path = folder / filename
            if not path.is_file():
                raise IntegrityError(f"{name!r} v{version}: {filename} is missing")
            if _sha256(path) != expected:
                raise IntegrityError(f"{name!r} v{version}: checksum mismatch for {filename}")
        if ARTIFACT not in manifest.get("files", {}):
            raise IntegrityError(f"{name!r} v{version}: manifest lists no {ARTIFACT}")
        trained_with = manifest.get("sklearn_version", "")
        if _minor(trained_with) != _minor(sklearn.__version__):
            raise IntegrityError(
                f"{name!r} v{version} was saved with scikit-learn {trained_with}; "
                f"this process has {sklearn.__version__}. Retrain or install a matching version."
            )
        return manifest

    def load(self, name: str, version: int | None = None) -> LoadedModel:
        """Verify, then deserialize one version (the current one by default)."""
        if version is None:
            version = self.current(name)
            if version is None:
                raise ModelNotFoundError(f"model {name!r} has no current version in {self.root}")
        manifest = self.verify(name, version)
        artifact = self._versions_dir(name) / str(version) / ARTIFACT
        untrusted = set(sio.get_untrusted_types(file=artifact)) - set(TRUSTED_TYPES)
        if untrusted:
            raise IntegrityError(f"{name!r} v{version} holds types outside the allow-list: {sorted(untrusted)}")
        pipeline = sio.load(artifact, trusted=list(TRUSTED_TYPES))
        return LoadedModel(name=name, version=version, pipeline=pipeline, manifest=manifest)

    def _versions_dir(self, name: str) -> Path:
        if not name or not all(ch.isalnum() or ch in "-_." for ch in name) or name.startswith("."):
            raise ValueError(f"invalid model name {name!r}")
        return self.root / name / "versions"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    with path.open("w") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])
