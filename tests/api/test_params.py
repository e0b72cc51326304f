"""A query parameter that no endpoint takes is refused, never ignored."""

import pytest

from tests.api.test_routes import RECORD, post


def test_a_misspelled_model_parameter_is_refused_and_no_job_is_made(client, redis_db) -> None:
    response = post(client, RECORD, query="?modle=glm27")
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "unknown_parameter"
    assert "'modle'" in error["message"]
    assert error["details"] == {
        "unknown": ["modle"],
        "accepted": ["explain", "fields", "id_field", "model", "strict", "threshold", "version", "wait"],
    }  # fmt: skip
    assert redis_db.keys("glmq:*job*") == []


TASK = "/tasks/0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", f"{TASK}?ofset=3"), ("delete", f"{TASK}?x=1"), ("get", "/health?verbose=1"), ("get", "/ready?x=1"),
     ("get", "/metrics?name=a"), ("get", "/openapi.json?v=2"), ("get", "/docs?x=1"),
     ("get", "/models?all=1")],
)  # fmt: skip
def test_every_endpoint_refuses_a_parameter_it_does_not_take(client, method, path) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "unknown_parameter"


def test_the_parameters_an_endpoint_takes_are_accepted(client) -> None:
    task_id = post(client, RECORD, query="?model=glm26&threshold=0.5&strict=false").get_json()["task_id"]
    assert client.get(f"/tasks/{task_id}?offset=0&limit=1").status_code == 200
