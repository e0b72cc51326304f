"""Workers' counts reach the API's /metrics through Redis: rows scored and failed, and job times."""

from __future__ import annotations

import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = requests.get(f"{url}/metrics", timeout=30)
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def idle(url: str, timeout: float = 120) -> Samples:
    """Wait until no job of an earlier test is in flight, so what follows counts only this test's jobs."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        busy = [name for name in ("glmq_jobs_unfinished", "glmq_chunks_waiting", "glmq_small_jobs_waiting")
                if samples[name, ()]]  # fmt: skip
        if not busy:
            return samples
        assert time.monotonic() < deadline, f"the stack is still busy: {busy}"
        time.sleep(0.2)


def test_rows_scored_and_failed_and_job_times_come_from_the_workers(stack, real_rows) -> None:
    good = [r["values"] for r in real_rows["rows"]]
    bad = {**good[0], "x12": "not money"}
    small = [*good, bad]  # micro-batched
    big = [good[i % len(good)] for i in range(2_500)]  # two chunks of CHUNK_ROWS=2000
    big[10] = big[2_100] = bad
    model = (("model", "glm26"),)
    succeeded = (("model", "glm26"), ("status", "succeeded"))

    before = idle(stack.url)
    bodies = [stack.score(small), stack.score(big)]
    after = scrape(stack.url)

    failed = sum("error" in row for body in bodies for row in body["results"])
    assert failed == 3
    delta = {key: after[key] - before.get(key, 0) for key in after}
    assert delta["glmq_rows_scored_total", model] == len(small) + len(big) - failed
    assert delta["glmq_rows_failed_total", model] == failed
    assert delta["glmq_job_duration_seconds_count", succeeded] == 2
    assert delta["glmq_job_duration_seconds_bucket", (("le", "+Inf"), *succeeded)] == 2
    assert delta["glmq_job_duration_seconds_sum", succeeded] > 0
    assert after["glmq_redis_up", ()] == 1
