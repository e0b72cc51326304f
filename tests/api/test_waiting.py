"""?wait= on GET /tasks/<id> and POST /predict: answers when the job ends, waiting on Redis."""

import threading
import time
from dataclasses import replace

import pytest

from api import create_app
from tests.api.test_routes import RECORD, finish_as_workers_would, post


def finish_later(app, task_id: str, rows: int, delay: float) -> threading.Thread:
    """Finish the job from another thread after `delay` seconds, as a worker would."""
    thread = threading.Timer(delay, finish_as_workers_would, args=(app, task_id, rows, 100))
    thread.start()
    return thread


def test_a_waiting_status_request_answers_when_the_job_ends(app, client) -> None:
    task_id = post(client, RECORD).get_json()["task_id"]
    finisher = finish_later(app, task_id, 1, delay=0.3)
    started = time.monotonic()
    body = client.get(f"/tasks/{task_id}?wait=20").get_json()
    waited = time.monotonic() - started
    finisher.join()
    assert body["status"] == "succeeded" and body["results"] == [{"row": 0}]
    assert waited < 15  # it did not sit out the whole wait (loose: the machine may be busy)


def test_a_wait_that_runs_out_answers_the_current_status(client) -> None:
    task_id = post(client, RECORD).get_json()["task_id"]
    started = time.monotonic()
    body = client.get(f"/tasks/{task_id}?wait=0.2").get_json()
    assert body["status"] == "queued" and "results" not in body
    assert time.monotonic() - started >= 0.2


def test_an_ended_job_answers_at_once_and_the_body_is_the_same_as_without_wait(app, client) -> None:
    task_id = post(client, [RECORD] * 3).get_json()["task_id"]
    finish_as_workers_would(app, task_id, 3, 100)
    assert client.get(f"/tasks/{task_id}?wait=30").get_json() == client.get(f"/tasks/{task_id}").get_json()
    assert client.get(f"/tasks/{task_id}?wait=30&offset=1&limit=1").get_json()["results"] == [{"row": 1}]


def test_predict_with_wait_answers_200_with_results_when_the_job_ends_in_time(app, client) -> None:
    # No worker runs here: a thread stands in for one, finishing whatever job appears.
    jobs = app.extensions["glmq"].jobs

    def worker() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            taken = jobs.take_ready(max_rows=10, lease_seconds=30, holder="stand-in")
            if taken:
                finish_as_workers_would(app, taken[0].job_id, taken[0].rows, 100)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=worker)
    thread.start()
    response = post(client, [RECORD, RECORD], query="?wait=10")
    thread.join()
    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["rows"], body["results"]) == ("succeeded", 2, [{"row": 0}, {"row": 1}])


def test_predict_with_a_wait_that_runs_out_answers_202(client) -> None:
    response = post(client, RECORD, query="?wait=0.1")
    assert response.status_code == 202
    assert response.get_json()["status"] == "queued"


@pytest.mark.parametrize("wait", ["0", "-1", "31", "abc", "nan", "inf", ""])
def test_a_bad_wait_is_422_and_creates_no_job(client, redis_db, wait) -> None:
    for response in (post(client, RECORD, query=f"?wait={wait}"), client.get(f"/tasks/{'0' * 32}?wait={wait}")):
        assert response.status_code == 422, (wait, response.get_json())
        assert response.get_json()["error"]["code"] == "invalid_wait"
    assert redis_db.keys("glmq:*:job") == []


def test_past_the_bound_on_waiters_a_request_answers_at_once(settings) -> None:
    app = create_app(replace(settings, max_waiters=1))
    try:
        client = app.test_client()
        task_id = post(client, RECORD).get_json()["task_id"]
        holder = threading.Thread(target=lambda: client.get(f"/tasks/{task_id}?wait=3"))
        holder.start()
        time.sleep(0.3)  # the one slot is taken
        started = time.monotonic()
        body = client.get(f"/tasks/{task_id}?wait=3").get_json()
        answered_in = time.monotonic() - started
        holder.join()
        assert body["status"] == "queued"
        assert answered_in < 2.5  # not held for the wait: no slot was free
    finally:
        app.extensions["glmq"].redis.close()
        app.extensions["glmq"].waiters.client.close()
