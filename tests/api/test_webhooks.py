"""The Webhook-Url header at submission: refused unless signed webhooks are on and the target is safe."""

import time
from dataclasses import replace

import msgspec
import pytest

from api import create_app
from api.openapi import build_spec
from api.schemas import Task
from jobs import keys
from jobs.webhooks import DeliveryState, Webhooks
from settings import Secret
from tests.api.test_routes import RECORD, post

SECRET = Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
REFUSED = [
    "http://127.0.0.1:8080/hook",
    "https://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://localhost/hook",
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
]


@pytest.fixture
def signing(settings):
    app = create_app(replace(settings, webhook_secret=SECRET))
    yield app.test_client()
    app.extensions["glmq"].redis.close()
    app.extensions["glmq"].waiters.client.close()


@pytest.mark.parametrize("url", REFUSED)
def test_unsafe_targets_are_refused_before_anything_is_stored(signing, redis_db, url: str) -> None:
    response = post(signing, RECORD, headers={"Webhook-Url": url})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "webhook_url_refused"
    assert error["details"] == {"url": url}
    assert redis_db.dbsize() == 0


def test_without_a_secret_a_webhook_is_refused_clearly(client, redis_db) -> None:
    response = post(client, RECORD, headers={"Webhook-Url": "https://93.184.215.14/hook"})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "webhooks_disabled"
    assert "WEBHOOK_SECRET" in response.get_json()["error"]["message"]
    assert redis_db.dbsize() == 0


def test_an_accepted_webhook_is_recorded_and_its_state_shown(settings, redis_db) -> None:
    app = create_app(replace(settings, webhook_secret=SECRET, webhook_allow_private=True))
    client = app.test_client()
    response = post(client, RECORD, headers={"Webhook-Url": "http://127.0.0.1:9/hook"})
    assert response.status_code == 202
    task_id = response.get_json()["task_id"]
    assert redis_db.hget(keys.job(task_id), "webhook_url") == b"http://127.0.0.1:9/hook"
    assert redis_db.zscore(keys.WEBHOOKS, task_id) is not None
    status = client.get(f"/tasks/{task_id}").get_json()
    assert status["webhook"] == {"url": "http://127.0.0.1:9/hook", "state": "pending", "attempts": 0}
    # A cancel ends the job in the API: its event is claimed and sent to the webhooks queue from here.
    assert client.delete(f"/tasks/{task_id}").status_code == 200
    assert Webhooks(redis_db, 600).claim([task_id]) == []  # already claimed, by the API
    assert [m for m in redis_db.lrange("webhooks", 0, -1) if task_id.encode() in m]
    # A first attempt that got a 500: the status shows it, and when the next one is due, in the documented shape.
    webhooks = Webhooks(redis_db, 600)
    attempt = webhooks.start(task_id, 1)
    webhooks.finish(attempt, DeliveryState.PENDING, status=500, next_at=time.time() + 20)
    response = client.get(f"/tasks/{task_id}")
    msgspec.json.decode(response.data, type=Task)  # the shape the OpenAPI document is generated from
    webhook = response.get_json()["webhook"]
    assert (webhook["state"], webhook["attempts"], webhook["last_status"]) == ("pending", 1, 500)
    assert webhook["next_attempt_at"] > response.get_json()["finished_at"]
    webhooks.finish(webhooks.start(task_id, 2), DeliveryState.DELIVERED, status=204)
    response = client.get(f"/tasks/{task_id}")
    msgspec.json.decode(response.data, type=Task)  # the shape the OpenAPI document is generated from
    webhook = response.get_json()["webhook"]
    assert (webhook["state"], webhook["attempts"], webhook["last_status"]) == ("delivered", 2, 204)
    assert set(webhook) == {"url", "state", "attempts", "last_status", "delivered_at"}
    app.extensions["glmq"].redis.close()
    app.extensions["glmq"].waiters.client.close()


def test_a_job_without_a_webhook_shows_none(client, redis_db) -> None:
    task_id = post(client, RECORD).get_json()["task_id"]
    assert "webhook" not in client.get(f"/tasks/{task_id}").get_json()
    assert redis_db.zcard(keys.WEBHOOKS) == 0


def test_the_openapi_document_describes_the_header_the_event_and_the_delivery_state(settings) -> None:
    spec = build_spec(settings)
    header = next(p for p in spec["paths"]["/predict"]["post"]["parameters"] if p["name"] == "Webhook-Url")
    assert header["in"] == "header" and "webhook_url_refused" in header["description"]
    ended = spec["webhooks"]["jobEnded"]["post"]
    assert {p["name"] for p in ended["parameters"]} == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert ended["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Event"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["Event"]["properties"]["type"]["enum"]) == {"job.succeeded", "job.failed"}
    assert set(schemas["EventData"]["required"]) == {
        "task_id", "status", "rows", "rows_done", "model", "threshold", "status_url"
    }  # fmt: skip
    assert "results" not in schemas["EventData"]["properties"]
    assert schemas["Task"]["properties"]["webhook"] == {"$ref": "#/components/schemas/WebhookDelivery"}
    assert set(schemas["WebhookDelivery"]["properties"]) >= {"state", "attempts", "last_status", "delivered_at"}
