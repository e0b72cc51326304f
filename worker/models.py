"""Per-process model cache: each worker process loads a model version once."""

from __future__ import annotations

import logging

from model_store import ModelStore, artifacts
from model_store.artifacts import LoadedModel

log = logging.getLogger(__name__)


class ModelCache:
    """Loaded, verified model versions of this process, keyed by name and version."""

    def __init__(self, store: ModelStore) -> None:
        self.store = store
        self._loaded: dict[tuple[str, int], LoadedModel] = {}

    def get(self, name: str, version: int) -> LoadedModel:
        """Return a version, loading and verifying it on first use."""
        key = (name, version)
        if key not in self._loaded:
            self._loaded[key] = artifacts.load(self.store, name, version)
            log.info("loaded model %s v%s", name, version)
        return self._loaded[key]

    def preload_current(self, name: str) -> LoadedModel | None:
        """Load the serving version now, so the first job pays nothing."""
        version = self.store.current(name)
        return None if version is None else self.get(name, version)
