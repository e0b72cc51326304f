import hashlib
import json
import os
import threading

import pytest

from model_store import IntegrityError, ModelNotFoundError, ModelStore

NAME = "glm26"


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "store")


def save(store: ModelStore, content: bytes = b"weights", threshold: float = 0.712) -> int:
    return store.save(NAME, lambda folder: (folder / "model.skops").write_bytes(content), {"threshold": threshold})


def edit_manifest(store: ModelStore, version: int, **changes) -> None:
    path = store.folder(NAME, version) / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_save_stamps_checksums_and_runtime_into_the_manifest(store) -> None:
    manifest = store.manifest(NAME, save(store, b"weights"))
    assert manifest["files"] == {"model.skops": hashlib.sha256(b"weights").hexdigest()}
    assert (manifest["name"], manifest["version"], manifest["threshold"]) == (NAME, 1, 0.712)
    assert set(manifest) >= {"created_at", "python_version", "numpy_version", "sklearn_version", "skops_version"}
    assert store.verify(NAME, 1) == manifest


def test_versions_count_up_and_promotion_moves_the_pointer(store) -> None:
    first, second = save(store), save(store, threshold=0.5)
    assert (first, second) == (1, 2)
    assert store.current(NAME) is None
    store.promote(NAME, first)
    assert store.resolve(NAME) == 1
    store.promote(NAME, second)
    assert (store.current(NAME), store.resolve(NAME), store.resolve(NAME, 1)) == (2, 2, 1)
    assert store.manifest(NAME, store.resolve(NAME))["threshold"] == 0.5


def test_concurrent_saves_get_distinct_versions(store) -> None:
    versions: list[int] = []
    threads = [threading.Thread(target=lambda: versions.append(save(store))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == [1, 2, 3, 4]
    assert store.versions(NAME) == [1, 2, 3, 4]


def test_a_tampered_file_fails_verification_and_cannot_be_promoted(store) -> None:
    version = save(store, b"weights")
    (store.folder(NAME, version) / "model.skops").write_bytes(b"weighTs")
    with pytest.raises(IntegrityError, match=r"checksum mismatch for model\.skops"):
        store.verify(NAME, version)
    with pytest.raises(IntegrityError):
        store.promote(NAME, version)
    assert store.current(NAME) is None


def test_an_edited_manifest_fails_verification(store) -> None:
    version = save(store)
    edit_manifest(store, version, files={"model.skops": "0" * 64})
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        store.verify(NAME, version)
    edit_manifest(store, version, files={})
    with pytest.raises(IntegrityError, match=r"lists no model\.skops"):
        store.verify(NAME, version)


@pytest.mark.parametrize("escape", ["../../outside.txt", "/tmp/outside.txt", "sub/model.skops", "..", "", "link"])
def test_manifest_files_are_confined_to_the_version_folder(store, tmp_path, escape) -> None:
    version = save(store)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"secret")
    (store.folder(NAME, version) / "link").symlink_to(outside)
    listed = {"model.skops": hashlib.sha256(b"weights").hexdigest(), escape: hashlib.sha256(b"secret").hexdigest()}
    edit_manifest(store, version, files=listed)
    with pytest.raises(IntegrityError, match="is not a file of the version folder"):
        store.verify(NAME, version)
    edit_manifest(store, version, files=[["model.skops", "0" * 64]])
    with pytest.raises(IntegrityError, match="not a mapping"):
        store.verify(NAME, version)


def test_an_incompatible_sklearn_version_fails_verification(store) -> None:
    version = save(store)
    edit_manifest(store, version, sklearn_version="0.24.2")
    with pytest.raises(IntegrityError, match=r"saved with scikit-learn 0\.24\.2"):
        store.verify(NAME, version)


def test_a_half_written_version_is_never_listed_or_verified(store) -> None:
    save(store)
    versions = store.root / NAME / "versions"
    # A save that died mid-way leaves a staging folder, or (copied by hand) a folder without manifest.
    (versions / ".staging-dead").mkdir()
    (versions / ".staging-dead" / "model.skops").write_bytes(b"partial")
    (versions / "2").mkdir()
    (versions / "2" / "model.skops").write_bytes(b"partial")
    assert store.versions(NAME) == [1]
    with pytest.raises(ModelNotFoundError):
        store.verify(NAME, 2)
    assert save(store) == 3
    assert store.versions(NAME) == [1, 3]


def test_a_failed_write_leaves_no_version_behind(store) -> None:
    def crash(folder) -> None:
        (folder / "model.skops").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        store.save(NAME, crash, {"threshold": 0.5})
    assert store.versions(NAME) == []
    assert list((store.root / NAME / "versions").iterdir()) == []


def test_promotion_replaces_the_pointer_atomically(store, monkeypatch) -> None:
    store.promote(NAME, save(store))
    save(store)
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


def test_missing_model_and_version_are_clear_errors(store) -> None:
    with pytest.raises(ModelNotFoundError, match="no current version"):
        store.resolve(NAME)
    with pytest.raises(ModelNotFoundError, match="no version 7"):
        store.verify(NAME, 7)
    with pytest.raises(ValueError, match="invalid model name"):
        store.versions("../etc")


def test_a_promotion_is_seen_at_once_by_a_reader_that_read_the_pointer_before(tmp_path, approved) -> None:
    from model_store import artifacts
    from training.pipeline import schema

    writer, reader = ModelStore(tmp_path), ModelStore(tmp_path)

    def save() -> int:
        return artifacts.save(
            writer, "m", approved, schema=schema(approved), threshold=0.5, metrics={}, data_fingerprint={"s": "t"}
        )

    first, second = save(), save()
    writer.promote("m", first)
    assert reader.current("m") == first and reader.current("m") == first  # the second read is from the cache
    writer.promote("m", second)
    assert reader.current("m") == second
    assert reader.manifest("m", second)["version"] == second
