"""PredictionClient against a real HTTP server that answers from a script."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from client import ClientError, ConnectionFailedError, JobFailedError, PredictionClient, Submitted, WaitTimeoutError
from tests.client.scripted import MiniService, Reply, ScriptedServer, Seen, accepted, error, status

RECORD = {"x12": "$1,000.00", "x31": "asia"}
INVALID_THRESHOLD = "threshold must be a number between 0 and 1."


@pytest.fixture
def make_client(server: ScriptedServer) -> Iterator[Any]:
    clients: list[PredictionClient] = []

    def make(**kwargs: Any) -> PredictionClient:
        kwargs = {"retries": 5, "backoff": 0.01, "timeout": 5, **kwargs}
        client = PredictionClient(kwargs.pop("url", server.url), **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def test_503_with_retry_after_is_retried_until_the_job_is_accepted(server, make_client) -> None:
    server.script(
        error(503, "redis_unavailable", "The job store is unavailable; retry shortly.", Retry_After="0"),
        error(503, "model_unavailable", "No model is being served.", Retry_After="0"),
        accepted(rows=1),
    )
    submitted = make_client().submit(RECORD)
    assert submitted == Submitted("a" * 32, 1, 0.712, "glm26", 1, f"/tasks/{'a' * 32}")
    assert server.paths() == ["POST /predict"] * 3
    assert [seen.json() for seen in server.seen] == [RECORD] * 3
    assert {seen.headers["Content-Type"] for seen in server.seen} == {"application/json"}


def test_429_is_retried(server, make_client) -> None:
    server.script(error(429, "rate_limited", "Too many requests.", Retry_After="0"), accepted())
    make_client().submit([RECORD])
    assert len(server.seen) == 2


def test_retry_after_is_waited_for(server, make_client) -> None:
    server.script(error(503, "redis_unavailable", "Retry shortly.", Retry_After="1"), accepted())
    started = time.monotonic()
    make_client(backoff=0.01).submit(RECORD)
    assert 0.9 <= time.monotonic() - started < 30  # upper bounds are loose: CI machines are noisy
    assert len(server.seen) == 2


def test_a_long_retry_after_is_capped(server, make_client) -> None:
    server.script(error(503, "redis_unavailable", "Retry much later.", Retry_After="3600"), accepted())
    started = time.monotonic()
    make_client(max_delay=0.05).submit(RECORD)
    assert time.monotonic() - started < 30  # far below the 3,600 s asked for
    assert len(server.seen) == 2


def test_without_retry_after_the_waits_grow_exponentially(server, make_client) -> None:
    server.script(error(503, "redis_unavailable", "Retry shortly."))
    started = time.monotonic()
    with pytest.raises(ClientError):
        make_client(retries=3, backoff=0.05).submit(RECORD)
    elapsed = time.monotonic() - started
    assert len(server.seen) == 4
    assert 0 + 0.1 + 0.2 <= elapsed < 30  # urllib3's backoff: the first retry at once, then 2·backoff, 4·backoff


def test_each_submission_carries_a_fresh_idempotency_key_that_its_retries_repeat(server, make_client) -> None:
    server.script(error(503, "redis_unavailable", "Retry shortly.", Retry_After="0"), accepted(), accepted())
    client = make_client()
    client.submit(RECORD)
    client.submit(RECORD)
    keys = [seen.headers["Idempotency-Key"] for seen in server.seen]
    assert len(keys) == 3
    assert keys[0] == keys[1] != keys[2]
    assert all(len(key) == 32 and int(key, 16) >= 0 for key in keys)  # uuid4 hex


def test_upload_progress_counts_bytes_and_a_retried_upload_sends_the_whole_body_again(server, make_client) -> None:
    server.script(error(503, "redis_unavailable", "Retry shortly.", Retry_After="0"), accepted(rows=2_000))
    sent: list[tuple[int, int]] = []
    make_client().submit([RECORD] * 2_000, on_upload=lambda *call: sent.append(call))
    size = len(json.dumps([RECORD] * 2_000, separators=(",", ":")))
    assert [seen.body for seen in server.seen] == [json.dumps([RECORD] * 2_000, separators=(",", ":")).encode()] * 2
    assert {total for _, total in sent} == {size}
    assert [done for done, _ in sent].count(size) >= 2  # to the end, once per attempt
    assert sent[-1] == (size, size)


def test_when_retries_run_out_the_last_error_is_raised(server, make_client) -> None:
    server.script(error(503, "redis_unavailable", "The job store is unavailable; retry shortly.", Retry_After="0"))
    with pytest.raises(ClientError) as caught:
        make_client(retries=2).submit(RECORD)
    assert len(server.seen) == 3
    assert (caught.value.status, caught.value.code) == (503, "redis_unavailable")
    assert str(caught.value) == "503 redis_unavailable: The job store is unavailable; retry shortly."


def test_a_422_is_not_retried_and_carries_the_service_error(server, make_client) -> None:
    server.script(error(422, "invalid_threshold", INVALID_THRESHOLD, {"threshold": "7.0"}), accepted())
    with pytest.raises(ClientError) as caught:
        make_client().submit(RECORD, threshold=7)
    assert len(server.seen) == 1
    assert parse_qs(urlsplit(server.seen[0].path).query) == {"threshold": ["7.0"]}
    exc = caught.value
    assert (exc.status, exc.code, exc.message, exc.details) == (
        422, "invalid_threshold", INVALID_THRESHOLD, {"threshold": "7.0"}
    )  # fmt: skip
    assert str(exc) == f"422 invalid_threshold: {INVALID_THRESHOLD}"


@pytest.mark.parametrize(
    ("status_code", "code"),
    [(400, "malformed_json"), (401, "unauthorized"), (404, "task_not_found"), (413, "too_many_rows"),
     (415, "unsupported_media_type"), (500, "internal_error")],
)  # fmt: skip
def test_other_errors_are_never_retried(server, make_client, status_code, code) -> None:
    server.script(error(status_code, code, "No.", Retry_After="0"), accepted())
    with pytest.raises(ClientError) as caught:
        make_client().submit(RECORD)
    assert len(server.seen) == 1
    exc = caught.value
    assert (exc.status, exc.code, str(exc)) == (status_code, code, f"{status_code} {code}: No.")


def test_an_error_without_the_json_shape_is_still_readable(server, make_client) -> None:
    server.script(Reply(502, "<html><body>\n  Bad   gateway\n</body></html>"))
    with pytest.raises(ClientError) as caught:
        make_client().submit(RECORD)
    assert len(server.seen) == 1
    assert str(caught.value) == "502 http_error: <html><body> Bad gateway </body></html>"


def test_a_read_timeout_is_retried(server, make_client) -> None:
    server.script(Reply(**{**vars(accepted()), "delay": 1.0}), accepted())
    submitted = make_client(timeout=0.2).submit(RECORD)
    assert submitted.task_id == "a" * 32
    assert len(server.seen) == 2


def test_a_refused_connection_is_retried_then_reported(make_client) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionFailedError) as caught:
        make_client(url=f"http://127.0.0.1:{port}", retries=2).submit(RECORD)
    assert caught.value.attempts == 3
    assert str(caught.value).startswith(f"cannot reach http://127.0.0.1:{port} after 3 attempts: ")
    assert "Connection refused" in str(caught.value)


def test_the_api_key_travels_as_a_bearer_token_and_never_shows(server, make_client) -> None:
    server.script(accepted())
    client = make_client(api_key="s3cret")
    client.submit(RECORD)
    make_client().submit(RECORD)
    assert server.seen[0].headers["Authorization"] == "Bearer s3cret"
    assert "Authorization" not in server.seen[1].headers
    assert "s3cret" not in repr(client)


def test_wait_reports_each_change_of_progress(server, make_client) -> None:
    results = [{"row": i, "business_outcome": 0, "phat": 0.5} for i in range(10)]
    server.script(
        status("queued", 0),
        status("running", 4),
        status("running", 4),
        status("succeeded", 10, finished_at="t1", results=results),
    )
    calls: list[tuple[int, int]] = []
    body = make_client().wait("a" * 32, on_progress=lambda done, rows: calls.append((done, rows)), poll_interval=0.01)
    assert calls == [(0, 10), (4, 10), (10, 10)]
    assert body["results"] == results
    assert server.paths() == [f"GET /tasks/{'a' * 32}?limit=20000&wait=0.01"] * 4


def test_wait_asks_the_service_to_hold_each_status_request(server, make_client) -> None:
    server.script(status("running", 0, rows=1), status("succeeded", 1, rows=1, finished_at="t1", results=[{"row": 0}]))
    make_client().wait("a" * 32)
    assert server.paths() == [f"GET /tasks/{'a' * 32}?limit=20000&wait=1.0"] * 2  # one second by default


def test_a_failed_job_raises_with_the_service_reason(server, make_client) -> None:
    server.script(status("running", 0), status("failed", 0, error={"code": "job_failed", "message": "chunk 0 lost"}))
    with pytest.raises(JobFailedError) as caught:
        make_client().wait("a" * 32, poll_interval=0.01)
    assert (caught.value.code, caught.value.message) == ("job_failed", "chunk 0 lost")
    assert str(caught.value) == f"task {'a' * 32} failed (job_failed): chunk 0 lost"


def test_waiting_gives_up_after_its_timeout(server, make_client) -> None:
    server.script(status("running", 3))
    with pytest.raises(WaitTimeoutError, match=r"still running after 0\.2 s"):
        make_client().wait("a" * 32, poll_interval=0.02, timeout=0.2)


def test_predict_splits_into_jobs_and_numbers_rows_over_the_whole_input(server, make_client) -> None:
    server.script(MiniService())
    records = [{"v": i / 10} for i in range(10)]
    calls: list[tuple[int, int]] = []
    results = make_client().predict(records, batch_rows=4, on_progress=lambda *call: calls.append(call))
    assert server.paths()[:3] == ["POST /predict"] * 3
    assert [len(seen.json()) for seen in server.seen[:3]] == [4, 4, 2]
    assert [item["row"] for item in results] == list(range(10))
    assert [item["phat"] for item in results] == [i / 10 for i in range(10)]
    assert calls == [(4, 10), (8, 10), (10, 10)]


def test_large_results_are_read_a_page_at_a_time(server, make_client) -> None:
    server.script(MiniService())
    client = make_client()
    job = client.submit([{"v": i / 10} for i in range(5)])
    body = client.wait(job.task_id, page_rows=2, poll_interval=0.01)
    assert [item["row"] for item in body["results"]] == [0, 1, 2, 3, 4]
    pages = [
        f"GET /tasks/{job.task_id}?{query}" for query in ("limit=2&wait=0.01", "offset=2&limit=2", "offset=4&limit=2")
    ]
    assert server.paths()[1:] == pages


def test_cancel_answers_the_cancelled_status(server, make_client) -> None:
    server.script(MiniService())
    client = make_client()
    job = client.submit([{"v": 0.1}])
    body = client.cancel(job.task_id)
    assert (body["status"], body["error"]["code"]) == ("failed", "job_cancelled")
    assert server.paths()[-1] == f"DELETE /tasks/{job.task_id}"


def test_when_predict_cannot_finish_it_cancels_the_jobs_not_yet_collected(server, make_client) -> None:
    service = MiniService(failing=f"{2:032x}")
    server.script(service)
    with pytest.raises(JobFailedError, match="chunk 0 lost"):
        make_client().predict([{"v": i / 10} for i in range(10)], batch_rows=4, poll_interval=0.01)
    assert service.cancelled == [f"{2:032x}", f"{3:032x}"]  # job 1 was collected; 2 failed; 3 never waited for


def test_predict_without_batch_rows_sends_one_job(server, make_client) -> None:
    server.script(MiniService())
    results = make_client().predict([{"v": 0.25}, {"v": 0.75}], threshold=0.5)
    assert server.paths()[0] == "POST /predict?threshold=0.5"
    assert len(server.seen) == 2
    assert results == [
        {"business_outcome": 0, "phat": 0.25, "row": 0},
        {"business_outcome": 1, "phat": 0.75, "row": 1},
    ]


def test_cancelling_on_the_way_out_makes_one_attempt_per_job(server, make_client) -> None:
    service = MiniService(failing=f"{1:032x}")

    def refuse_cancels(seen: Seen) -> Reply:
        if seen.method == "DELETE":
            return error(503, "redis_unavailable", "Retry shortly.", Retry_After="0")
        return service(seen)

    server.script(refuse_cancels)
    with pytest.raises(JobFailedError):
        make_client(retries=3).predict([{"v": i / 10} for i in range(4)], batch_rows=2, poll_interval=0.01)
    deletes = [path for path in server.paths() if path.startswith("DELETE")]
    assert deletes == [f"DELETE /tasks/{1:032x}", f"DELETE /tasks/{2:032x}"]


def test_wait_follows_the_event_stream_and_resumes_it_where_it_broke_off(server, make_client) -> None:
    sse = {"Content-Type": "text/event-stream"}
    ended = status("succeeded", 10, finished_at="t1").body
    results = [{"row": i, "business_outcome": 0, "phat": 0.5} for i in range(10)]
    cut = 'retry: 2000\n\nid: 1-0\nevent: progress\ndata: {"rows_done": 4, "rows": 10}\n\n'  # no final event
    rest = 'id: 2-0\nevent: progress\ndata: {"rows_done": 10, "rows": 10}\n\n: keep-alive\n\n'
    rest += f"id: 3-0\nevent: succeeded\ndata: {json.dumps(ended)}\n\n"
    server.script(Reply(200, cut, sse), Reply(200, rest, sse), status("succeeded", 10, results=results))
    calls: list[tuple[int, int]] = []
    body = make_client().wait("a" * 32, on_progress=lambda *call: calls.append(call), events=True)
    assert calls == [(4, 10), (10, 10)]
    assert body["results"] == results
    events = f"GET /tasks/{'a' * 32}/events"
    assert server.paths() == [events, events, f"GET /tasks/{'a' * 32}?offset=0&limit=20000"]
    assert "Last-Event-ID" not in server.seen[0].headers
    assert server.seen[1].headers["Last-Event-ID"] == "1-0"


def test_without_an_event_stream_wait_polls(server, make_client) -> None:
    server.script(
        error(503, "too_many_streams", "Too many event streams", Retry_After="5"),
        status("succeeded", 1, rows=1, finished_at="t1", results=[{"row": 0}]),
    )
    assert make_client().wait("a" * 32, events=True)["results"] == [{"row": 0}]
    assert server.paths() == [f"GET /tasks/{'a' * 32}/events", f"GET /tasks/{'a' * 32}?limit=20000&wait=1.0"]
