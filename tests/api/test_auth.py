from dataclasses import replace

import pytest

from api import create_app
from jobs import keys
from settings import Secret
from tests.api.test_routes import RECORD, post

KEYS = (Secret("alpha-key"), Secret("beta-key"))


@pytest.fixture
def keyed_client(settings):
    return create_app(replace(settings, api_keys=KEYS)).test_client()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), {"Authorization": "Basic alpha-key"}, bearer("")])
def test_without_a_valid_key_predict_and_tasks_are_401(keyed_client, headers) -> None:
    for response in (
        post(keyed_client, RECORD, headers=headers),
        keyed_client.get(f"/tasks/{'0' * 32}", headers=headers),
        keyed_client.delete(f"/tasks/{'0' * 32}", headers=headers),
    ):
        assert response.status_code == 401
        assert response.get_json()["error"]["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_probes_the_description_and_the_metrics_need_no_key(keyed_client) -> None:
    for path in ("/health", "/ready", "/openapi.json", "/docs", "/docs/assets/swagger-ui.css", "/metrics"):
        response = keyed_client.get(path)
        assert response.status_code == 200, path
        response.close()


def test_a_task_is_visible_and_cancellable_only_by_the_key_that_created_it(keyed_client, redis_db) -> None:
    response = post(keyed_client, RECORD, headers=bearer("alpha-key"))
    assert response.status_code == 202
    task_url = response.headers["Location"]
    assert keyed_client.get(task_url, headers=bearer("alpha-key")).status_code == 200
    other = keyed_client.get(task_url, headers=bearer("beta-key"))
    assert other.status_code == 404
    assert other.get_json()["error"]["code"] == "task_not_found"
    assert keyed_client.delete(task_url, headers=bearer("beta-key")).status_code == 404
    assert keyed_client.get(task_url, headers=bearer("alpha-key")).get_json()["status"] == "queued"
    stored_owner = redis_db.hget(keys.job(response.get_json()["task_id"]), "owner").decode()
    assert stored_owner and "alpha" not in stored_owner


def test_rate_limit_answers_429_with_retry_after_per_key(settings, redis_db) -> None:
    client = create_app(replace(settings, api_keys=KEYS, rate_limit_per_minute=3)).test_client()
    statuses = [post(client, RECORD, headers=bearer("alpha-key")).status_code for _ in range(5)]
    assert statuses[:3] == [202, 202, 202] and statuses[3:] == [429, 429]
    limited = post(client, RECORD, headers=bearer("alpha-key"))
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 61
    assert post(client, RECORD, headers=bearer("beta-key")).status_code == 202


def test_keys_never_appear_in_settings_output(settings) -> None:
    shown = replace(settings, api_keys=KEYS, redis_url=Secret("redis://:hunter2@db:6379/0"),
                    celery_broker_url=Secret("amqp://glmq:s3cret@mq:5672//"))  # fmt: skip
    text = repr(shown) + str(shown.describe())
    assert "alpha-key" not in text and "hunter2" not in text and "s3cret" not in text
    assert shown.describe()["redis_url"] == "redis://:*****@db:6379/0"
    assert shown.describe()["celery_broker_url"] == "amqp://glmq:*****@mq:5672//"
    assert shown.describe()["api_keys"] == "2 key(s)"


def test_polling_is_not_rate_limited(settings, redis_db) -> None:
    client = create_app(replace(settings, rate_limit_per_minute=1)).test_client()
    task_url = post(client, RECORD).headers["Location"]
    assert post(client, RECORD).status_code == 429
    assert [client.get(task_url).status_code for _ in range(5)] == [200] * 5
