"""GET /tasks/<id>/events in process against a real Redis: the events, resuming, auth and 404, the bound."""

from __future__ import annotations

import json
from dataclasses import replace

from api import create_app, events
from settings import Secret
from tests.api.test_routes import RECORD, finish_as_workers_would, post


def parse(text: str) -> list[dict[str, str]]:
    """Return the messages of an event stream: each one's fields (comments and `retry` left out)."""
    messages = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "event" in fields:
            messages.append(fields)
    return messages


def test_a_finished_job_streams_its_progress_then_its_status_and_ends(app, client, settings) -> None:
    task_id = post(client, [RECORD] * 250).get_json()["task_id"]
    finish_as_workers_would(app, task_id, 250, settings.chunk_rows)
    response = client.get(f"/tasks/{task_id}/events")
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    messages = parse(response.get_data(as_text=True))
    assert [m["event"] for m in messages] == ["progress"] * 3 + ["succeeded"]
    assert [json.loads(m["data"]) for m in messages[:3]] == [
        {"rows_done": 100, "rows": 250}, {"rows_done": 200, "rows": 250}, {"rows_done": 250, "rows": 250},
    ]  # fmt: skip
    final = json.loads(messages[-1]["data"])
    assert (final["task_id"], final["status"], final["rows_done"], "results" in final) == (
        task_id, "succeeded", 250, False,
    )  # fmt: skip
    resumed = client.get(f"/tasks/{task_id}/events", headers={"Last-Event-ID": messages[1]["id"]})
    assert parse(resumed.get_data(as_text=True)) == messages[2:]
    done = client.get(f"/tasks/{task_id}/events", headers={"Last-Event-ID": messages[-1]["id"]})
    assert (done.status_code, done.data) == (204, b"")  # an EventSource stops reconnecting on a 204


def test_a_cancelled_job_ends_with_a_failed_event(app, client, settings) -> None:
    task_id = post(client, [RECORD] * 250).get_json()["task_id"]
    app.extensions["glmq"].jobs.finish_chunk(task_id, 0, 100, b"[]")
    client.delete(f"/tasks/{task_id}")
    messages = parse(client.get(f"/tasks/{task_id}/events").get_data(as_text=True))
    assert [m["event"] for m in messages] == ["progress", "failed"]
    assert json.loads(messages[-1]["data"])["error"]["code"] == "job_cancelled"


def test_the_same_404_and_auth_rules_as_get(settings, redis_db) -> None:
    client = create_app(replace(settings, api_keys=(Secret("alpha"), Secret("beta")))).test_client()
    alpha = {"Authorization": "Bearer alpha"}
    task_id = post(client, RECORD, headers=alpha).get_json()["task_id"]
    assert client.get(f"/tasks/{task_id}/events").status_code == 401
    assert client.get(f"/tasks/{task_id}/events", headers={"Authorization": "Bearer beta"}).status_code == 404
    assert client.get(f"/tasks/{'0' * 32}/events", headers=alpha).status_code == 404
    bad = client.get(f"/tasks/{task_id}/events", headers={**alpha, "Last-Event-ID": "yesterday"})
    assert (bad.status_code, bad.get_json()["error"]["code"]) == (400, "invalid_last_event_id")
    assert client.get(f"/tasks/{task_id}/events?wait=1", headers=alpha).status_code == 422


def test_streams_past_the_bound_are_503_with_retry_after(settings, redis_db) -> None:
    app = create_app(replace(settings, max_streams=1))
    client = app.test_client()
    task_id = post(client, [RECORD] * 150).get_json()["task_id"]
    finish_as_workers_would(app, task_id, 150, settings.chunk_rows)
    held = client.get(f"/tasks/{task_id}/events", buffered=False)  # open, not read: it holds the one slot
    refused = client.get(f"/tasks/{task_id}/events")
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (503, "too_many_streams")
    assert refused.headers["Retry-After"] == "5"
    held.close()  # as the server does once the client has gone
    for _ in range(2):  # a stream read to its end and closed gives its slot back
        again = client.get(f"/tasks/{task_id}/events")
        assert (again.status_code, again.get_data(as_text=True).count("event: succeeded")) == (200, 1)
        again.close()


def test_a_running_jobs_stream_keeps_alive_then_delivers_each_event_as_it_comes(app, client, monkeypatch) -> None:
    monkeypatch.setattr(events, "KEEPALIVE_SECONDS", 0.2)
    task_id = post(client, [RECORD] * 150).get_json()["task_id"]
    response = client.get(f"/tasks/{task_id}/events", buffered=False)
    chunks = iter(response.response)
    assert next(chunks) == b"retry: 2000\n\n"
    assert next(chunks) == b": keep-alive\n\n"  # nothing happened within the keep-alive interval
    jobs = app.extensions["glmq"].jobs
    jobs.finish_chunk(task_id, 0, 100, b"[]")
    assert parse(next(chunks).decode())[0]["data"] == '{"rows_done":100,"rows":150}'
    jobs.finish_chunk(task_id, 1, 50, b"[]")
    assert [m["event"] for m in parse(b"".join(chunks).decode())] == ["progress", "succeeded"]
    response.close()
