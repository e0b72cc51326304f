import json
import os
import threading

import pytest

from model_store import IntegrityError, ModelNotFoundError, ModelStore
from training.scoring import score_records

NAME = "glm26"


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "store")


def save(store: ModelStore, pipeline, threshold: float = 0.712) -> int:
    return store.save(NAME, pipeline, threshold=threshold, metrics={"auc": 0.8}, data_fingerprint={"sha256": "ab"})


def test_save_promote_load_round_trip(store, approved, real_rows) -> None:
    version = save(store, approved)
    assert store.current(NAME) is None
    store.promote(NAME, version)
    loaded = store.load(NAME)
    assert (loaded.name, loaded.version, loaded.threshold) == (NAME, 1, 0.712)
    records = [r["values"] for r in real_rows["rows"]]
    assert score_records(loaded.pipeline, records, 0.712) == score_records(approved, records, 0.712)


def test_manifest_records_what_a_reviewer_needs(store, approved) -> None:
    manifest = store.manifest(NAME, save(store, approved))
    assert manifest["input_fields"] == ["x12", "x31", "x44", "x5", "x53", "x56", "x58", "x62", "x81", "x91"]
    assert len(manifest["output_variables"]) == 25
    assert set(manifest) >= {
        "name",
        "version",
        "created_at",
        "files",
        "python_version",
        "numpy_version",
        "sklearn_version",
        "threshold",
        "metrics",
        "data_fingerprint",
    }
    assert len(manifest["files"]["model.skops"]) == 64


def test_versions_count_up_and_promotion_moves_the_pointer(store, approved) -> None:
    first, second = save(store, approved), save(store, approved, threshold=0.5)
    assert (first, second) == (1, 2)
    store.promote(NAME, first)
    store.promote(NAME, second)
    assert store.current(NAME) == 2
    assert store.load(NAME).threshold == 0.5
    assert store.load(NAME, 1).threshold == 0.712


def test_concurrent_saves_get_distinct_versions(store, approved) -> None:
    versions: list[int] = []
    threads = [threading.Thread(target=lambda: versions.append(save(store, approved))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == [1, 2, 3, 4]
    assert store.versions(NAME) == [1, 2, 3, 4]


def test_a_tampered_artifact_is_refused_before_deserializing(store, approved) -> None:
    version = save(store, approved)
    artifact = store.root / NAME / "versions" / str(version) / "model.skops"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0xFF
    artifact.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=r"checksum mismatch for model\.skops"):
        store.load(NAME, version)
    with pytest.raises(IntegrityError):
        store.promote(NAME, version)


def test_an_edited_manifest_is_refused(store, approved) -> None:
    version = save(store, approved)
    path = store.root / NAME / "versions" / str(version) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["files"]["model.skops"] = "0" * 64
    path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        store.load(NAME, version)


def test_an_incompatible_sklearn_version_is_refused(store, approved) -> None:
    version = save(store, approved)
    path = store.root / NAME / "versions" / str(version) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["sklearn_version"] = "0.24.2"
    path.write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError, match=r"saved with scikit-learn 0\.24\.2"):
        store.load(NAME, version)


def test_a_half_written_version_is_never_listed_or_loaded(store, approved) -> None:
    save(store, approved)
    versions = store.root / NAME / "versions"
    # A save that died mid-way leaves a staging folder, or (copied by hand) a folder without manifest.
    (versions / ".staging-dead").mkdir()
    (versions / ".staging-dead" / "model.skops").write_bytes(b"partial")
    (versions / "2").mkdir()
    (versions / "2" / "model.skops").write_bytes(b"partial")
    assert store.versions(NAME) == [1]
    with pytest.raises(ModelNotFoundError):
        store.load(NAME, 2)
    assert save(store, approved) == 3
    assert store.versions(NAME) == [1, 3]


def test_promotion_replaces_the_pointer_atomically(store, approved, monkeypatch) -> None:
    store.promote(NAME, save(store, approved))
    save(store, approved)
    calls = []
    real_replace = os.replace

    def watch(src, dst):
        calls.append((os.path.basename(src), os.path.basename(dst)))
        assert store.current(NAME) == 1  # readers see the old pointer until the rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", watch)
    store.promote(NAME, 2)
    assert calls and calls[0][1] == "current"
    assert store.current(NAME) == 2


def test_missing_model_and_version_are_clear_errors(store, approved) -> None:
    with pytest.raises(ModelNotFoundError, match="no current version"):
        store.load(NAME)
    with pytest.raises(ModelNotFoundError, match="no version 7"):
        store.load(NAME, 7)
    with pytest.raises(ValueError, match="invalid model name"):
        store.versions("../etc")
