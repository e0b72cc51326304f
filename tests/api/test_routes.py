import json
import time

import pytest

from api import create_app
from jobs import keys
from jobs.broker import QUEUE
from jobs.leases import Leases
from jobs.store import StartOutcome
from settings import Secret
from stack.processes import free_port

RECORD = {"x5": "sunday", "x12": "$3709.93", "x31": "asia", "x81": "November", "x91": "0.5"}


def post(client, body, content_type="application/json", query="", **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(f"/predict{query}", data=data, content_type=content_type, **kwargs)


def queued_messages(redis_db) -> list[dict]:
    return [json.loads(raw) for raw in redis_db.lrange(QUEUE, 0, -1)]


def test_accepts_one_record_and_answers_202_at_once(client, redis_db) -> None:
    response = post(client, RECORD)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["rows"] == 1
    assert body["model"] == {"name": "glm26", "version": 1}
    assert body["threshold"] == 0.712
    assert body["status_url"] == f"/tasks/{body['task_id']}"
    assert response.headers["Location"] == body["status_url"]


def test_the_job_record_and_payload_are_written_and_the_message_carries_only_ids(client, redis_db) -> None:
    records = [dict(RECORD, x91=str(i)) for i in range(250)]
    task_id = post(client, records).get_json()["task_id"]
    job = {k.decode(): v.decode() for k, v in redis_db.hgetall(keys.job(task_id)).items()}
    assert (job["status"], job["rows"], job["chunks"], job["rows_done"]) == ("queued", "250", "3", "0")
    chunks = [json.loads(redis_db.get(keys.payload(task_id, k))) for k in range(3)]
    assert chunks[0] + chunks[1] + chunks[2] == records
    messages = queued_messages(redis_db)
    assert [m["headers"]["argsrepr"] for m in messages] == [f"['{task_id}', {k}]" for k in (2, 1, 0)] or sorted(
        m["headers"]["argsrepr"] for m in messages
    ) == sorted(f"['{task_id}', {k}]" for k in range(3))
    assert all(m["content-type"] == "application/json" for m in messages)
    assert max(len(json.dumps(m)) for m in messages) < 4_000


def test_every_key_of_a_job_expires(client, redis_db, settings) -> None:
    task_id = post(client, [RECORD] * 150).get_json()["task_id"]
    keys = redis_db.keys(f"glmq:*{task_id}*")
    assert len(keys) == 3
    for key in keys:
        assert 0 < redis_db.ttl(key) <= settings.result_ttl_seconds


def test_status_of_a_queued_job(client) -> None:
    task_id = post(client, RECORD).get_json()["task_id"]
    response = client.get(f"/tasks/{task_id}")
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["task_id", "status", "rows", "rows_done", "model", "threshold", "submitted_at"]
    assert (body["status"], body["rows"], body["rows_done"]) == ("queued", 1, 0)


def test_client_threshold_is_kept_with_the_job(client, redis_db) -> None:
    body = post(client, RECORD, query="?threshold=0.25").get_json()
    assert body["threshold"] == 0.25
    assert redis_db.hget(keys.job(body["task_id"]), "threshold") == b"0.25"


def finish_as_workers_would(app, task_id: str, rows: int, chunk_rows: int) -> None:
    jobs = app.extensions["glmq"].jobs
    for chunk, start in enumerate(range(0, rows, chunk_rows)):
        done = range(start, min(start + chunk_rows, rows))
        jobs.finish_chunk(task_id, chunk, len(done), json.dumps([{"row": i} for i in done]).encode())


def test_results_can_be_read_a_page_at_a_time(app, client, settings) -> None:
    task_id = post(client, [RECORD] * 250).get_json()["task_id"]
    finish_as_workers_would(app, task_id, 250, settings.chunk_rows)
    everything = client.get(f"/tasks/{task_id}").get_json()
    assert everything["status"] == "succeeded" and "page" not in everything
    assert [r["row"] for r in everything["results"]] == list(range(250))

    pages, url = [], f"/tasks/{task_id}?limit=60"
    while url:
        body = client.get(url).get_json()
        pages.append((body["page"]["offset"], len(body["results"])))
        assert [r["row"] for r in body["results"]] == list(range(body["page"]["offset"], 250))[:60]
        url = body["page"]["next"]
    assert pages == [(0, 60), (60, 60), (120, 60), (180, 60), (240, 10)]

    tail = client.get(f"/tasks/{task_id}?offset=230").get_json()
    assert [r["row"] for r in tail["results"]] == list(range(230, 250))
    assert tail["page"] == {"offset": 230, "limit": None, "next": None}
    beyond = client.get(f"/tasks/{task_id}?offset=250&limit=5").get_json()
    assert (beyond["results"], beyond["page"]["next"]) == ([], None)


def test_a_queued_job_can_be_cancelled_once_and_stays_cancelled(app, client, redis_db) -> None:
    task_id = post(client, [RECORD] * 250).get_json()["task_id"]
    response = client.delete(f"/tasks/{task_id}")
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["error"]) == (
        "failed",
        {"code": "job_cancelled", "message": "cancelled by the client"},
    )
    assert redis_db.keys(f"glmq:*{task_id}*:payload:*") == []
    assert client.delete(f"/tasks/{task_id}").get_json() == body  # cancelling again changes nothing
    jobs = app.extensions["glmq"].jobs
    assert jobs.start_chunk(task_id, 0, max_deliveries=3) == (StartOutcome.SKIP, None)  # a worker skips it
    assert jobs.finish_chunk(task_id, 1, 100, b"[]") == -1  # and one already running cannot revive it
    status = client.get(f"/tasks/{task_id}").get_json()
    assert {**status, "results": None} == {**body, "results": None}
    assert [row["error"]["code"] for row in status["results"]] == ["cancelled"] * 250


def test_a_cancelled_job_keeps_the_chunks_it_scored_and_pages_them(app, client, settings) -> None:
    task_id = post(client, [RECORD] * 250).get_json()["task_id"]  # chunks of 100: rows 0-99, 100-199, 200-249
    jobs = app.extensions["glmq"].jobs
    jobs.finish_chunk(task_id, 1, 100, json.dumps([{"row": i, "phat": 0.5} for i in range(100, 200)]).encode())
    assert client.delete(f"/tasks/{task_id}").get_json()["rows_done"] == 100
    status = client.get(f"/tasks/{task_id}").get_json()
    assert (status["status"], status["error"]["code"], status["rows_done"]) == ("failed", "job_cancelled", 100)
    results = status["results"]
    assert [row["row"] for row in results] == list(range(250))
    assert all(row == {"row": row["row"], "phat": 0.5} for row in results[100:200])
    cancelled = {"code": "cancelled", "message": "The job was cancelled before this row was scored."}
    assert all(row == {"row": row["row"], "error": cancelled} for row in results[:100] + results[200:])
    pages, url = [], f"/tasks/{task_id}?offset=90&limit=60"
    while url:
        page = client.get(url).get_json()
        pages += page["results"]
        url = page["page"]["next"]
    assert pages == results[90:]


def test_a_finished_job_cannot_be_cancelled(app, client, settings) -> None:
    task_id = post(client, RECORD).get_json()["task_id"]
    finish_as_workers_would(app, task_id, 1, settings.chunk_rows)
    response = client.delete(f"/tasks/{task_id}")
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "task_finished"
    assert client.get(f"/tasks/{task_id}").get_json()["status"] == "succeeded"
    assert client.delete(f"/tasks/{'0' * 32}").status_code == 404


@pytest.mark.parametrize("query", ["offset=-1", "offset=x", "limit=0", "limit=-5", "limit=1.5", "offset=" + "9" * 5000])
def test_a_bad_page_is_422(client, query) -> None:
    task_id = post(client, RECORD).get_json()["task_id"]
    response = client.get(f"/tasks/{task_id}?{query}")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_page"


NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("body", "content_type", "query", "status", "code"),
    [
        (b"{not json", "application/json", "", 400, "malformed_json"),
        (b'{"x12": "\xff\xfe"}', "application/json", "", 400, "malformed_json"),
        (b'{"unused": "\xff\xfe"}', "application/json", "", 400, "malformed_json"),
        (b"", "application/json", "", 400, "empty_body"),
        (b"   ", "application/json", "", 400, "empty_body"),
        (json.dumps(RECORD), "text/plain", "", 415, "unsupported_media_type"),
        (json.dumps(RECORD), "application/x-www-form-urlencoded", "", 415, "unsupported_media_type"),
        (b"42", "application/json", "", 422, "invalid_shape"),
        (b'"text"', "application/json", "", 422, "invalid_shape"),
        (b"null", "application/json", "", 422, "invalid_shape"),
        (b"[]", "application/json", "", 422, "empty_batch"),
        (b'[{"x12": 1}, 3]', "application/json", "", 422, "invalid_record"),
        (b'[{"x12": 1}, [1]]', "application/json", "", 422, "invalid_record"),
        (b'{"x12": NaN}', "application/json", "", 422, "non_finite_number"),
        (b'{"x12": Infinity}', "application/json", "", 422, "non_finite_number"),
        (b'{"x12": -Infinity}', "application/json", "", 422, "non_finite_number"),
        (b'{"x12": 1e999}', "application/json", "", 422, "non_finite_number"),
        (b'{"x12": 1' + b"0" * 5000 + b"}", "application/json", "", 422, "non_finite_number"),
        (NESTED, "application/json", "", 422, "invalid_record"),
        (b'{"x12": ' + NESTED + b"}", "application/json", "", 422, "too_deeply_nested"),
        (b'{"unused": ' + NESTED + b"}", "application/json", "", 422, "too_deeply_nested"),
        (json.dumps([{}] * 1_001), "application/json", "", 413, "too_many_rows"),
        (b'{"x": "' + b"a" * 1_000_001 + b'"}', "application/json", "", 413, "body_too_large"),
        (json.dumps(RECORD), "application/json", "?threshold=abc", 422, "invalid_threshold"),
        (json.dumps(RECORD), "application/json", "?threshold=1.5", 422, "invalid_threshold"),
        (json.dumps(RECORD), "application/json", "?threshold=nan", 422, "invalid_threshold"),
        (json.dumps(RECORD), "application/json", "?threshold=-0.1", 422, "invalid_threshold"),
    ],
)
def test_bad_requests_get_a_json_error_with_a_stable_code(client, redis_db, body, content_type, query, status, code):
    response = post(client, body, content_type=content_type, query=query)
    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert redis_db.llen(QUEUE) == 0


def test_compressed_bodies_other_than_gzip_are_refused(client) -> None:
    response = post(client, RECORD, headers={"Content-Encoding": "deflate"})
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_content_encoding"


@pytest.mark.parametrize("task_id", ["0" * 32, "not-a-task", "../../etc"])
def test_unknown_task_is_404(client, task_id) -> None:
    response = client.get(f"/tasks/{task_id}")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] in ("task_not_found", "not_found")


def test_other_errors_are_json_too(client) -> None:
    assert client.get("/predict").get_json()["error"]["code"] == "method_not_allowed"
    assert client.get("/nowhere").get_json()["error"]["code"] == "not_found"


def test_health(client) -> None:
    assert client.get("/health").get_json() == {"status": "ok"}


def test_ready_names_the_served_model_and_counts_live_workers(client, redis_db) -> None:
    model = {"name": "glm26", "version": 1}
    response = client.get("/ready")
    # No worker: jobs are still accepted (they wait in the queue), and the answer says so.
    assert (response.status_code, response.get_json()) == (200, {"status": "no_workers", "model": model, "workers": 0})
    leases = Leases(redis_db, lease_seconds=5)
    leases.renew("host:1", (), ())  # two worker processes' heartbeats, as worker/heartbeat.py sends them
    leases.renew("host:2", (), ())
    assert client.get("/ready").get_json() == {"status": "ready", "model": model, "workers": 2}
    leases.leave("host:1")
    redis_db.zadd(keys.WORKERS, {"host:2": time.time() - 1})  # its heartbeat lapsed: the process died
    assert client.get("/ready").get_json()["status"] == "no_workers"


def test_redis_down_is_503_not_500(settings) -> None:
    from dataclasses import replace

    app = create_app(replace(settings, redis_url=Secret(f"redis://127.0.0.1:{free_port()}/0")))
    client = app.test_client()
    for response in (post(client, RECORD), client.get(f"/tasks/{'0' * 32}"), client.get("/ready")):
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "redis_unavailable"
        assert response.headers["Retry-After"]


def test_no_serving_model_is_503(settings, tmp_path) -> None:
    from dataclasses import replace

    client = create_app(replace(settings, model_store_dir=tmp_path)).test_client()
    for response in (post(client, RECORD), client.get("/ready")):
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "model_unavailable"
        assert response.headers["Retry-After"]  # it heals once a version is promoted
        assert str(tmp_path) not in response.get_data(as_text=True)
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("manifest", ["{not json", '{"threshold": 0.5}', '{"threshold": "x", "input_fields": []}'])
def test_a_broken_serving_version_is_500_without_retry_after_or_internals(settings, tmp_path, manifest) -> None:
    from dataclasses import replace

    version = tmp_path / "glm26" / "versions" / "1"
    version.mkdir(parents=True)
    (version / "manifest.json").write_text(manifest)
    (tmp_path / "glm26" / "current").write_text("1\n")
    client = create_app(replace(settings, model_store_dir=tmp_path)).test_client()
    for response in (post(client, RECORD), client.get("/ready")):
        assert (response.status_code, response.get_json()["error"]["code"]) == (500, "model_invalid")
        assert "Retry-After" not in response.headers  # retrying will not mend it
        text = response.get_data(as_text=True)
        assert str(tmp_path) not in text and "manifest" not in text and "Error" not in text


def test_a_model_can_be_named_and_an_unknown_one_is_404(client) -> None:
    named = post(client, RECORD, query="?model=glm26")
    assert (named.status_code, named.get_json()["model"]) == (202, {"name": "glm26", "version": 1})
    unknown = post(client, RECORD, query="?model=churn")
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (404, "model_not_found")
    for bad in ("../glm26", "", "a" * 65, ".hidden"):
        response = post(client, RECORD, query=f"?model={bad}")
        assert (response.status_code, response.get_json()["error"]["code"]) == (422, "invalid_model"), bad


def test_only_the_fields_the_model_reads_are_stored(client, redis_db) -> None:
    record = {**RECORD, "x0": "1.5", "x63": "62.59%", "unrelated": {"deep": [1, 2]}}
    task_id = post(client, record).get_json()["task_id"]
    assert json.loads(redis_db.get(keys.payload(task_id, 0))) == [RECORD]
