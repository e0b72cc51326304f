"""A versioned model store on a filesystem: save, list, verify and promote.

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
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from model_store.exceptions import IntegrityError, ModelNotFoundError

# What a model may be called: a plain folder name, so no name can reach outside the store.
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_NAME = re.compile(NAME_PATTERN)
ARTIFACT = "model.skops"
MANIFEST = "manifest.json"
# Recorded in every manifest; read from package metadata so the catalog never imports them.
RUNTIME_PACKAGES = {"numpy_version": "numpy", "sklearn_version": "scikit-learn", "skops_version": "skops"}


class ModelStore:
    """Versions of named models under one root folder.

    It reads and writes folders, manifests and pointers only; `model_store.artifacts` turns a version
    into a pipeline, so the API can ask what is served without importing scikit-learn.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._files = _FileCache()

    def save(self, name: str, write: Callable[[Path], None], manifest: Mapping[str, Any]) -> int:
        """Publish a new version of `name` whose files `write` puts in a folder; return its number.

        The manifest gains the name, the time, the runtime and a checksum of every file. The version
        is not promoted.
        """
        versions = self._versions_dir(name)
        versions.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=versions))
        try:
            write(staging)
            files = {path.name: _sha256(path) for path in sorted(staging.iterdir())}
            runtime = {key: metadata.version(package) for key, package in RUNTIME_PACKAGES.items()}
            stamped = {
                **manifest,
                **runtime,
                "name": name,
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "files": files,
                "python_version": platform.python_version(),
            }
            return self._publish(name, staging, stamped)
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

    def names(self) -> list[str]:
        """Return the names of the models that have a complete version, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name for entry in self.root.iterdir() if _NAME.fullmatch(entry.name) and self.versions(entry.name)
        )

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
        path = self.folder(name, version) / MANIFEST
        try:
            return dict(self._files.read(path, json.loads))
        except FileNotFoundError:
            raise ModelNotFoundError(f"model {name!r} has no version {version}") from None
        except json.JSONDecodeError as exc:
            raise IntegrityError(f"manifest of {name!r} v{version} is not valid JSON: {exc}") from None

    def current(self, name: str) -> int | None:
        """Return the serving version of `name`, or None when none was promoted."""
        try:
            return self._files.read(self.root / name / "current", lambda text: int(text.strip()))
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
        folder = self.folder(name, version)
        files = manifest.get("files", {})
        if not isinstance(files, dict):
            raise IntegrityError(f"{name!r} v{version}: the manifest's files are not a mapping")
        for filename, expected in files.items():
            path = _inside(folder, filename)
            if path is None:
                raise IntegrityError(f"{name!r} v{version}: {filename!r} is not a file of the version folder")
            if not path.is_file():
                raise IntegrityError(f"{name!r} v{version}: {filename} is missing")
            if _sha256(path) != expected:
                raise IntegrityError(f"{name!r} v{version}: checksum mismatch for {filename}")
        if ARTIFACT not in files:
            raise IntegrityError(f"{name!r} v{version}: manifest lists no {ARTIFACT}")
        trained_with, installed = manifest.get("sklearn_version", ""), metadata.version("scikit-learn")
        if _minor(trained_with) != _minor(installed):
            raise IntegrityError(
                f"{name!r} v{version} was saved with scikit-learn {trained_with}; "
                f"this process has {installed}. Retrain or install a matching version."
            )
        return manifest

    def folder(self, name: str, version: int) -> Path:
        """Return the folder holding one version's files."""
        return self._versions_dir(name) / str(version)

    def resolve(self, name: str, version: int | None = None) -> int:
        """Return `version`, or the serving version when it is None."""
        if version is not None:
            return version
        current = self.current(name)
        if current is None:
            raise ModelNotFoundError(f"model {name!r} has no current version in {self.root}")
        return current

    def _versions_dir(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise ValueError(f"invalid model name {name!r}")
        return self.root / name / "versions"


def _inside(folder: Path, filename: object) -> Path | None:
    """Return the path of a file the manifest names, or None if it is anything but a plain file name there.

    A manifest is data: a name such as '../../etc/passwd', an absolute path, or a link leading out
    of the folder must not make verification read (or vouch for) a file elsewhere.
    """
    if not isinstance(filename, str) or filename in ("", ".", "..") or Path(filename).name != filename:
        return None
    path = folder / filename
    if path.resolve().parent != folder.resolve():
        return None
    return path


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


class _FileCache:
    """Parsed small files, read again only when the file changed (another inode, size or mtime).

    The API reads the serving pointer and manifest on every request; a stat is a hundredth of a
    read and a JSON parse. A promotion replaces the pointer with a rename, so it is seen at once.
    """

    def __init__(self) -> None:
        self._parsed: dict[Path, tuple[tuple[int, int, int], Any]] = {}

    def read(self, path: Path, parse: Callable[[str], Any]) -> Any:
        stat = path.stat()
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        cached = self._parsed.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
        value = parse(path.read_text())
        self._parsed[path] = (signature, value)
        return value


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])
