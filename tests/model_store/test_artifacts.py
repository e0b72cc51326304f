import pytest
import skops.io
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline

from model_store import IntegrityError, ModelStore, artifacts
from training.pipeline import schema
from training.scoring import score_records

NAME = "glm26"


class Unvetted(TransformerMixin, BaseEstimator):
    """A step whose type is not on the allow-list."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "store")


def save(store: ModelStore, pipeline: Pipeline, threshold: float = 0.712) -> int:
    return artifacts.save(
        store, NAME, pipeline, schema=schema(pipeline), threshold=threshold, metrics={"auc": 0.8}, data_fingerprint={}
    )


def test_save_promote_load_round_trip(store, approved, real_rows) -> None:
    store.promote(NAME, save(store, approved))
    loaded = artifacts.load(store, NAME)
    assert (loaded.name, loaded.version, loaded.threshold) == (NAME, 1, 0.712)
    records = [r["values"] for r in real_rows["rows"]]
    assert score_records(loaded.pipeline, records, 0.712) == score_records(approved, records, 0.712)


def test_manifest_records_the_schema_and_scores(store, approved) -> None:
    manifest = store.manifest(NAME, save(store, approved))
    assert manifest["input_fields"] == ["x12", "x31", "x44", "x5", "x53", "x56", "x58", "x62", "x81", "x91"]
    assert len(manifest["output_variables"]) == 25
    assert (manifest["format"], manifest["metrics"], manifest["data_fingerprint"]) == ("skops", {"auc": 0.8}, {})


def test_a_version_is_loaded_by_number(store, approved) -> None:
    save(store, approved)
    store.promote(NAME, save(store, approved, threshold=0.5))
    assert artifacts.load(store, NAME).threshold == 0.5
    assert artifacts.load(store, NAME, 1).threshold == 0.712


def test_a_tampered_artifact_is_refused_before_deserializing(store, approved, monkeypatch) -> None:
    version = save(store, approved)
    artifact = store.folder(NAME, version) / "model.skops"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    opened = []
    monkeypatch.setattr(skops.io, "get_untrusted_types", lambda **kw: opened.append(kw) or [])
    monkeypatch.setattr(skops.io, "load", lambda *a, **kw: opened.append(a))
    with pytest.raises(IntegrityError, match=r"checksum mismatch for model\.skops"):
        artifacts.load(store, NAME, version)
    assert opened == []


def test_a_type_outside_the_allow_list_is_refused(store, approved) -> None:
    steps = approved.steps
    version = save(store, Pipeline([*steps[:-1], ("unvetted", Unvetted()), steps[-1]]))
    unvetted = r"outside the allow-list: \['tests\.model_store\.test_artifacts\.Unvetted'\]"
    with pytest.raises(IntegrityError, match=unvetted):
        artifacts.load(store, NAME, version)
