"""End to end: HTTP in, Redis, Celery workers, HTTP out."""

import json
import time

import pytest
import requests

from training.scoring import score_records
from training.synth import synthesize

pytestmark = pytest.mark.integration


def in_process(approved, records, threshold=0.712):
    """Score in this process, then round-trip through JSON as the service does."""
    return json.loads(json.dumps(score_records(approved, records, threshold)))


@pytest.fixture(scope="module")
def ten_thousand() -> list[dict]:
    frame = synthesize(10_000, seed=11).drop(columns="y")
    return json.loads(frame.to_json(orient="records"))


def test_one_record(stack, approved, real_rows) -> None:
    record = next(r for r in real_rows["rows"] if r["id"] == "train_split_row0")["values"]
    body = stack.score(record)
    assert body["status"] == "succeeded"
    assert (body["rows"], body["rows_done"]) == (1, 1)
    assert body["finished_at"] >= body["submitted_at"]
    assert body["results"] == in_process(approved, [record])
    assert abs(body["results"][0]["phat"] - 0.722464) < 1e-6
    assert body["results"][0]["business_outcome"] == 1


def test_a_list_keeps_input_order(stack, approved, real_rows) -> None:
    records = [r["values"] for r in real_rows["rows"]]
    body = stack.score(records)
    assert [r["row"] for r in body["results"]] == list(range(len(records)))
    assert body["results"] == in_process(approved, records)
    assert list(body["results"][0]) == sorted(body["results"][0])


def test_ten_thousand_rows_equal_in_process_scoring_row_for_row(stack, approved, ten_thousand) -> None:
    body = stack.score(ten_thousand)
    assert body["rows_done"] == 10_000
    expected = in_process(approved, ten_thousand)
    assert len(body["results"]) == 10_000
    mismatched = [i for i, (got, want) in enumerate(zip(body["results"], expected)) if got != want]
    assert mismatched == []


def test_pages_of_results_join_up_to_the_whole(stack, ten_thousand) -> None:
    # 3,000-row pages cut across the 2,000-row chunks the workers wrote.
    task_id = stack.submit(ten_thousand).json()["task_id"]
    whole = stack.wait(task_id)["results"]
    joined, url, requests_made = [], f"{stack.url}/tasks/{task_id}?limit=3000", 0
    while url and requests_made < 10:
        body = requests.get(url, timeout=30).json()
        joined += body["results"]
        url = body["page"]["next"] and stack.url + body["page"]["next"]
        requests_made += 1
    assert (requests_made, url) == (4, None)
    assert joined == whole


def test_two_worker_processes_share_one_large_job(stack, ten_thousand) -> None:
    records = ten_thousand * 2
    response = stack.submit(records)
    task_id = response.json()["task_id"]
    body = stack.wait(task_id)
    assert body["status"] == "succeeded"
    assert [r["row"] for r in body["results"]] == list(range(20_000))
    chunks_by_worker = {worker.name: worker.log_path.read_text().count(f"of job {task_id}") for worker in stack.workers}
    assert sum(chunks_by_worker.values()) >= 10
    assert all(count > 0 for count in chunks_by_worker.values()), chunks_by_worker


def test_threshold_query_overrides_the_model_cutoff(stack, approved, real_rows) -> None:
    records = [r["values"] for r in real_rows["rows"]]
    phats = approved.predict_proba(records)[:, 1]
    cutoff = float(sorted(phats)[3])
    body = stack.score(records, query=f"?threshold={cutoff}")
    assert body["threshold"] == cutoff
    assert [r["business_outcome"] for r in body["results"]] == [int(p >= cutoff) for p in phats]
    assert sum(r["business_outcome"] for r in body["results"]) == 3


def test_a_bad_row_is_reported_and_the_rest_scored(stack, approved, real_rows) -> None:
    records = [dict(r["values"]) for r in real_rows["rows"]]
    records[1]["x12"] = "abc"
    records[3]["x5"] = 17
    body = stack.score(records)
    assert body["status"] == "succeeded"
    assert body["results"][1] == {"error": {"field": "x12", "message": "cannot parse 'abc' as a number"}, "row": 1}
    assert body["results"][3] == {"error": {"field": "x5", "message": "expected a string, got int"}, "row": 3}
    good = [0, 2, 4, 5]
    assert [body["results"][i] for i in good] == [
        {**r, "row": i} for r, i in zip(in_process(approved, [records[i] for i in good]), good)
    ]


@pytest.mark.parametrize(
    ("data", "headers", "status", "code"),
    [
        (b"{oops", {"Content-Type": "application/json"}, 400, "malformed_json"),
        (b'{"x12": 1}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (b"[]", {"Content-Type": "application/json"}, 422, "empty_batch"),
        (b"7", {"Content-Type": "application/json"}, 422, "invalid_shape"),
        (b"[1, 2]", {"Content-Type": "application/json"}, 422, "invalid_record"),
        (b'{"x12": NaN}', {"Content-Type": "application/json"}, 422, "non_finite_number"),
    ],
)
def test_client_errors_over_http(stack, data, headers, status, code) -> None:
    response = requests.post(f"{stack.url}/predict", data=data, headers=headers, timeout=30)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code


def test_too_many_rows_and_too_large_bodies_are_413(stack) -> None:
    response = requests.post(f"{stack.url}/predict", data=b"[" + b"{}," * 100_000 + b"{}]",
                             headers={"Content-Type": "application/json"}, timeout=30)  # fmt: skip
    assert (response.status_code, response.json()["error"]["code"]) == (413, "too_many_rows")
    big = b'{"x": "' + b"a" * 41_000_000 + b'"}'
    response = requests.post(f"{stack.url}/predict", data=big, headers={"Content-Type": "application/json"}, timeout=60)
    assert (response.status_code, response.json()["error"]["code"]) == (413, "body_too_large")


def test_a_chunked_body_over_the_limit_is_413(stack) -> None:
    def stream():
        yield b'{"x": "'
        for _ in range(45):
            yield b"a" * 1_000_000
        yield b'"}'

    response = requests.post(f"{stack.url}/predict", data=stream(), headers={"Content-Type": "application/json"},
                             timeout=60)  # fmt: skip
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert (response.status_code, response.json()["error"]["code"]) == (413, "body_too_large")


def test_threshold_out_of_range_is_422(stack, real_rows) -> None:
    response = stack.submit(real_rows["rows"][0]["values"], query="?threshold=2")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_threshold")


def test_unknown_task_is_404(stack) -> None:
    response = requests.get(f"{stack.url}/tasks/{'f' * 32}", timeout=10)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "task_not_found")


def test_an_expired_job_is_404_not_an_eternal_queued(stack, redis_server, real_rows) -> None:
    task_id = stack.submit(real_rows["rows"][0]["values"]).json()["task_id"]
    stack.wait(task_id)
    client = redis_server.client()
    keys = client.keys(f"glmq:*{task_id}*")
    assert keys and all(client.ttl(key) > 0 for key in keys)
    for key in keys:  # what the TTL does, without waiting a day
        client.pexpire(key, 1)
    time.sleep(0.01)
    response = requests.get(f"{stack.url}/tasks/{task_id}", timeout=10)
    assert response.status_code == 404, (response.text[:300], client.keys(f"glmq:*{task_id}*"))
    assert response.json()["error"]["code"] == "task_not_found"


def test_status_is_known_from_the_moment_of_the_202(stack, ten_thousand) -> None:
    response = stack.submit(ten_thousand[:4_000])
    status = requests.get(f"{stack.url}{response.headers['Location']}", timeout=10).json()
    assert status["status"] in ("queued", "running", "succeeded")
    assert status["rows"] == 4_000
    assert stack.wait(response.json()["task_id"])["status"] == "succeeded"


def test_each_worker_process_loaded_the_model_once(stack, real_rows) -> None:
    for _ in range(5):
        assert stack.score(real_rows["rows"][0]["values"])["status"] == "succeeded"
    for worker in stack.workers:
        assert worker.log_path.read_text().count("loaded model glm26 v1") == 1, worker.name
    assert "loaded model" not in stack.api.log_path.read_text()
