import logging

from model_store import ModelStore, artifacts
from training.pipeline import schema
from worker.models import ModelCache


def test_each_version_loads_once_and_only_the_most_recent_are_kept(tmp_path, approved, caplog) -> None:
    store = ModelStore(tmp_path)
    for threshold in (0.1, 0.2, 0.3):
        version = artifacts.save(
            store, "glm26", approved, schema=schema(approved), threshold=threshold, metrics={}, data_fingerprint={}
        )
    store.promote("glm26", version)
    cache = ModelCache(store, capacity=2)
    with caplog.at_level(logging.INFO, logger="worker.models"):
        assert cache.preload_current("glm26").threshold == 0.3
        assert [cache.get("glm26", v).threshold for v in (1, 3, 1, 3)] == [0.1, 0.3, 0.1, 0.3]
        cache.get("glm26", 2)  # evicts v1, the least recently used
        cache.get("glm26", 3)
        cache.get("glm26", 1)
    loads = [r.getMessage() for r in caplog.records if r.getMessage().startswith("loaded")]
    assert loads == ["loaded model glm26 v3", "loaded model glm26 v1", "loaded model glm26 v2", "loaded model glm26 v1"]
    assert cache.preload_current("other") is None
