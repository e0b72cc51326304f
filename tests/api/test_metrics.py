import json
from dataclasses import replace

from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from api import create_app
from jobs import JobStore
from jobs.broker import QUEUE
from jobs.leases import Leases
from settings import Secret
from stack.processes import free_port


def scrape(client: FlaskClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Return {sample name: {sorted labels: value}}, as prometheus_client's own parser reads /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, sample: str, **labels: str) -> float:
    return samples[sample][tuple(sorted(labels.items()))]


def post(client: FlaskClient, records: object) -> str:
    response = client.post("/predict", data=json.dumps(records), content_type="application/json")
    assert response.status_code == 202
    return response.get_json()["task_id"]


def test_the_gauges_follow_the_queue_and_the_jobs_in_redis(client, redis_db) -> None:
    before = scrape(client)
    gauges = ("glmq_redis_up", "glmq_chunks_waiting", "glmq_chunks_delivered", "glmq_small_jobs_waiting",
              "glmq_jobs_unfinished", "glmq_workers_alive")  # fmt: skip
    assert [value(before, name) for name in gauges] == [1, 0, 0, 0, 0, 0]
    assert before["glmq_model_served"] == {(("name", "glm26"), ("version", "1")): 1}

    records = [{"x12": "$1.00"}] * 250  # three chunks of 100
    post(client, records)
    post(client, records[:1])  # a small job: in line for a micro-batch, with one drain message
    redis_db.hset("unacked", "tag-1", "{}")  # as kombu records a message a worker holds
    Leases(redis_db, lease_seconds=5).renew("host:1", (), ())  # a worker process's heartbeat
    after = scrape(client)
    assert [value(after, name) for name in gauges] == [1, 4, 1, 1, 2, 1]
    assert redis_db.llen(QUEUE) == 4


def test_metrics_say_when_no_model_is_served(settings, tmp_path) -> None:
    client = create_app(replace(settings, model_store_dir=tmp_path)).test_client()
    assert scrape(client)["glmq_model_served"] == {(): 0}


def test_rows_and_job_times_that_workers_record_in_redis_show_up(client, settings, redis_db) -> None:
    # The job store as a worker holds it: its own connection to the same database.
    worker_side = JobStore(redis_db, settings.result_ttl_seconds, settings.job_deadline_seconds)
    assert "glmq_rows_scored_total" not in scrape(client)
    job_id = post(client, [{"x12": "$1.00"}] * 150)  # two chunks
    worker_side.finish_chunk(job_id, 0, 100, b"[]", failed=3)
    worker_side.finish_chunk(job_id, 0, 100, b"[]", failed=3)  # a redelivery counts nothing
    worker_side.finish_chunk(job_id, 1, 50, b"[]")
    samples = scrape(client)
    assert value(samples, "glmq_rows_scored_total", model="glm26") == 147
    assert value(samples, "glmq_rows_failed_total", model="glm26") == 3
    assert value(samples, "glmq_job_duration_seconds_count", model="glm26", status="succeeded") == 1
    assert value(samples, "glmq_job_duration_seconds_bucket", model="glm26", status="succeeded", le="+Inf") == 1
    assert "glmq_job_duration_seconds_sum" in samples


def test_the_http_histogram_counts_requests_by_route_and_status(client) -> None:
    for _ in range(3):
        client.get("/health")
    client.get(f"/tasks/{'a' * 32}")
    client.get(f"/tasks/{'b' * 32}")  # the same route: a task id is no label
    client.get("/no/such/path")
    client.post("/predict", data="{", content_type="application/json")
    client.open("/health", method="BREW")
    counts = scrape(client)["glmq_http_request_duration_seconds_count"]
    assert counts == {
        (("method", "GET"), ("route", "/health"), ("status", "200")): 3,
        (("method", "GET"), ("route", "/tasks/<task_id>"), ("status", "404")): 2,
        (("method", "GET"), ("route", "unmatched"), ("status", "404")): 1,
        (("method", "POST"), ("route", "/predict"), ("status", "400")): 1,
        (("method", "other"), ("route", "unmatched"), ("status", "405")): 1,
    }
    assert value(scrape(client), "glmq_http_request_duration_seconds_count", method="GET", route="/metrics",
                 status="200") == 1  # fmt: skip


def test_requests_refused_before_the_view_are_timed_too(settings) -> None:
    client = create_app(replace(settings, api_keys=(Secret("k1"),))).test_client()
    client.get(f"/tasks/{'a' * 32}")
    counts = scrape(client)["glmq_http_request_duration_seconds_count"]
    assert counts == {(("method", "GET"), ("route", "/tasks/<task_id>"), ("status", "401")): 1}


def test_each_app_keeps_its_own_http_histogram(settings, client) -> None:
    other = create_app(settings).test_client()
    client.get("/health")
    assert "glmq_http_request_duration_seconds_count" not in scrape(other)
    assert value(scrape(client), "glmq_http_request_duration_seconds_count", method="GET", route="/health",
                 status="200") == 1  # fmt: skip


def test_without_redis_the_scrape_still_answers_what_needs_no_redis(settings) -> None:
    client = create_app(replace(settings, redis_url=Secret(f"redis://127.0.0.1:{free_port()}/0"))).test_client()
    client.get("/health")
    samples = scrape(client)
    assert value(samples, "glmq_redis_up") == 0
    assert "glmq_chunks_waiting" not in samples and "glmq_rows_scored_total" not in samples
    assert value(samples, "glmq_model_served", name="glm26", version="1") == 1
    assert value(samples, "glmq_http_request_duration_seconds_count", method="GET", route="/health",
                 status="200") == 1  # fmt: skip
