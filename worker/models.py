"""Per-process model cache: each worker process loads a model version once."""

from __future__ import annotations

import logging
from collections import OrderedDict

from model_store import ModelStore, artifacts
from model_store.artifacts import LoadedModel

log = logging.getLogger(__name__)


class ModelCache:
    """Loaded, verified model versions of this process, keyed by name and version.

    It keeps the `capacity` most recently used, so a long-lived worker that has seen many promotions
    or models does not hold every version it ever loaded.
    """

    def __init__(self, store: ModelStore, capacity: int = 4) -> None:
        self.store = store
        self.capacity = capacity
        self._loaded: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()

    def get(self, name: str, version: int) -> LoadedModel:
        """Return a version, loading and verifying it on first use."""
        key = (name, version)
        if key in self._loaded:
            self._loaded.move_to_end(key)
            return self._loaded[key]
        model = artifacts.load(self.store, name, version)
        log.info("loaded model %s v%s", name, version)
        self._loaded[key] = model
        while len(self._loaded) > self.capacity:
            evicted, _ = self._loaded.popitem(last=False)
            log.info("unloaded model %s v%s", *evicted)
        return model

    def preload_current(self, name: str) -> LoadedModel | None:
        """Load the serving version now, so the first job pays nothing."""
        version = self.store.current(name)
        return None if version is None else self.get(name, version)
