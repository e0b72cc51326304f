"""GET /models lists the store; ?version= pins a stored version, and the job and its status name it."""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from api import create_app
from jobs import keys
from settings import Secret
from tests.api.test_routes import RECORD, post

GLM_FIELDS = ["x12", "x31", "x44", "x5", "x53", "x56", "x58", "x62", "x81", "x91"]


def _copy_version(root: Path, name: str, version: int, **changes) -> None:
    source = root / "glm26" / "versions" / "1"
    target = root / name / "versions" / str(version)
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    (target / "manifest.json").write_text(json.dumps({**manifest, "name": name, "version": version, **changes}))


@pytest.fixture
def model_store_dir(model_store_dir: Path, tmp_path: Path) -> Path:
    """The approved GLM as v1 (serving) and v2, and a model `other` with one version never promoted."""
    root = tmp_path / "store"
    shutil.copytree(model_store_dir, root)
    _copy_version(root, "glm26", 2, threshold=0.6, metrics={"auc": {"test": 0.8}})
    _copy_version(root, "other", 1, input_fields=["a", "b"])
    (root / "glm26" / "versions" / "3").mkdir()  # no manifest: a version being written, never listed
    return root


def test_models_lists_every_model_its_versions_and_the_serving_one(client) -> None:
    response = client.get("/models")
    assert response.status_code == 200
    glm, other = response.get_json()["models"]
    assert (glm["name"], glm["serving"], other["name"], other["serving"]) == ("glm26", 1, "other", None)
    assert [v["version"] for v in glm["versions"]] == [1, 2]
    first, second = glm["versions"]
    assert sorted(first["input_fields"]) == GLM_FIELDS and first["threshold"] == 0.712 and first["metrics"] == {}
    assert (second["threshold"], second["metrics"]) == (0.6, {"auc": {"test": 0.8}})
    assert first["created_at"]
    assert other["versions"][0]["input_fields"] == ["a", "b"]


def test_models_needs_the_api_key_when_keys_are_on(settings) -> None:
    keyed = create_app(replace(settings, api_keys=(Secret("k1"),))).test_client()
    assert keyed.get("/models").status_code == 401
    assert keyed.get("/models", headers={"Authorization": "Bearer k1"}).status_code == 200


def test_a_pinned_version_is_recorded_and_named_in_the_status(client, redis_db) -> None:
    response = post(client, RECORD, query="?version=2")
    assert response.status_code == 202
    body = response.get_json()
    assert (body["model"], body["threshold"]) == ({"name": "glm26", "version": 2}, 0.6)
    assert redis_db.hget(keys.job(body["task_id"]), "model_version") == b"2"
    assert client.get(body["status_url"]).get_json()["model"] == {"name": "glm26", "version": 2}
    assert post(client, RECORD).get_json()["model"]["version"] == 1  # unpinned: the serving version


def test_a_version_that_is_not_stored_is_404_naming_the_stored_ones(client, redis_db) -> None:
    for version in ("3", "7"):
        response = post(client, RECORD, query=f"?version={version}")
        assert response.status_code == 404
        assert response.get_json()["error"] == {
            "code": "version_not_found", "message": "Model 'glm26' has no version " + version + ".",
            "details": {"model": "glm26", "version": int(version), "versions": [1, 2]},
        }  # fmt: skip
    unknown = post(client, RECORD, query="?model=nosuch&version=1")
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (404, "model_not_found")
    assert redis_db.keys("glmq:*job*") == []


def test_a_version_of_a_model_never_promoted_can_be_pinned(client) -> None:
    response = post(client, {"a": 1}, query="?model=other&version=1")
    assert response.status_code == 202 and response.get_json()["model"] == {"name": "other", "version": 1}
    assert "warnings" not in response.get_json()


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5", "", "²"])
def test_a_version_that_is_not_a_whole_number_is_422(client, raw) -> None:
    response = post(client, RECORD, query=f"?version={raw}")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_version"
    assert response.get_json()["error"]["details"] == {"version": raw}
