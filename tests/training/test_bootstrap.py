from model_store import ModelStore, artifacts
from training.bootstrap import bootstrap


def test_bootstrap_saves_and_promotes_the_approved_glm_once(tmp_path) -> None:
    store = ModelStore(tmp_path / "store")
    assert bootstrap(store, "glm26") == 1
    assert bootstrap(store, "glm26") is None
    assert store.versions("glm26") == [1] and store.current("glm26") == 1
    assert bootstrap(store, "glm26", force=True) == 2
    assert store.current("glm26") == 2
    loaded = artifacts.load(store, "glm26", 2)
    assert loaded.threshold == store.manifest("glm26", 1)["threshold"]
    assert store.manifest("glm26", 2)["data_fingerprint"]["source"] == "training/data/approved_glm26.json"
