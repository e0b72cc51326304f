"""A model version as a scikit-learn Pipeline: written with skops, loaded only after verification."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import skops.io as sio
from sklearn.pipeline import Pipeline

from model_store.exceptions import IntegrityError
from model_store.store import ARTIFACT, ModelStore

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


def save(
    store: ModelStore,
    name: str,
    pipeline: Pipeline,
    *,
    schema: Mapping[str, Any],
    threshold: float,
    metrics: Mapping[str, Any],
    data_fingerprint: Mapping[str, Any],
) -> int:
    """Write `pipeline` as a new version of `name` with its schema and scores; return its number.

    `schema` names the raw `input_fields` the API accepts, the model's `output_variables`, and whether
    it is `linear` (its scores can be explained, `?explain=true`).
    """
    manifest = {
        **schema,
        "format": "skops",
        "threshold": float(threshold),
        "metrics": dict(metrics),
        "data_fingerprint": dict(data_fingerprint),
    }
    return store.save(name, lambda folder: sio.dump(pipeline, folder / ARTIFACT), manifest)


def load(store: ModelStore, name: str, version: int | None = None) -> LoadedModel:
    """Verify, then deserialize one version (the serving one by default)."""
    version = store.resolve(name, version)
    manifest = store.verify(name, version)
    artifact = store.folder(name, version) / ARTIFACT
    untrusted = set(sio.get_untrusted_types(file=artifact)) - set(TRUSTED_TYPES)
    if untrusted:
        raise IntegrityError(f"{name!r} v{version} holds types outside the allow-list: {sorted(untrusted)}")
    pipeline = sio.load(artifact, trusted=list(TRUSTED_TYPES))
    return LoadedModel(name=name, version=version, pipeline=pipeline, manifest=manifest)
