"""A 100,000-row request with long strings: the field cap keeps them out of Redis, and the API gives its memory back."""

from __future__ import annotations

import msgspec
import pytest
import requests

from tests.faults.conftest import FaultStack
from tests.faults.test_bad_input import api_pids, pss_kib

pytestmark = pytest.mark.faults

ROWS = 100_000
LONG = 2_400
GOOD = {"x5": "sunday", "x12": "$3709.93", "x31": "asia", "x81": "November", "x91": "0.5"}


def small_requests(url: str, count: int = 40) -> None:
    with requests.Session() as session:
        for _ in range(count):
            assert session.post(f"{url}/predict", json=GOOD, timeout=30).status_code == 202


def test_long_values_are_capped_and_the_api_memory_comes_back(fault_stack: FaultStack, report) -> None:
    fault_stack.env["CHUNK_ROWS"] = "5000"
    fault_stack.start_worker("w1")
    fault_stack.start_api()
    url, api = fault_stack.url, fault_stack.api
    small_requests(url)  # each thread's first requests grow the process once: not what is measured
    baseline = pss_kib(api_pids(api))
    redis = fault_stack.redis.client()
    stored_before = redis.info("memory")["used_memory"]

    rows = [{**GOOD, "x5": "s" * LONG} if row % 2 == 0 else GOOD for row in range(ROWS)]
    body = msgspec.json.encode(rows)
    accepted = requests.post(f"{url}/predict", data=body, headers={"Content-Type": "application/json"}, timeout=120)
    assert accepted.status_code == 202, accepted.text
    stored = redis.info("memory")["used_memory"] - stored_before
    right_after = pss_kib(api_pids(api))
    small_requests(url)  # the memory of the large request is given back after it, whichever process had it
    after = pss_kib(api_pids(api))

    task_id = accepted.json()["task_id"]
    final = fault_stack.wait_all([task_id], timeout=180)[task_id]
    assert final["status"] == "succeeded", final
    results = requests.get(f"{url}/tasks/{task_id}", timeout=60).json()["results"]
    report(
        "field cap",
        {
            "body MB": round(len(body) / 1e6, 1),
            "Redis growth MB": round(stored / 1e6, 1),
            "API MiB before": round(baseline / 1024, 1),
            "right after": round(right_after / 1024, 1),
            "after 40 more requests": round(after / 1024, 1),
        },
    )
    too_long = {"field": "x5", "message": "longer than 256 characters"}
    assert all(result == {"error": too_long, "row": row} for row, result in enumerate(results) if row % 2 == 0)
    assert all("phat" in result for result in results[1::2])
    assert stored < len(body) / 4  # verbatim, the payload alone would take more than the body
    assert after - baseline < 50 * 1024
