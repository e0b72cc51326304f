"""Chunks that crash their process or overrun their time limits fail their job cleanly and boundedly."""

import time

import pytest

from jobs import keys

pytestmark = pytest.mark.faults


@pytest.fixture
def faulty(fault_stack):
    worker = fault_stack.start_worker("faulty", concurrency=2, app="tests.faults.faulty_worker")
    fault_stack.start_api()
    return fault_stack, worker


def test_a_chunk_that_crashes_its_process_is_retried_boundedly_then_fails(faulty, real_rows, report) -> None:
    stack, worker = faulty
    good = real_rows["rows"][0]["values"]
    poison = stack.submit([good, dict(good, x12="__crash__")]).json()["task_id"]
    healthy = stack.submit([good] * 3).json()["task_id"]
    started = time.monotonic()
    final = stack.wait_all([poison, healthy], timeout=120)
    deliveries = int(stack.redis.client().hget(keys.attempts(poison), "0"))
    report("poison chunk", {"deliveries": deliveries, "seconds to fail": round(time.monotonic() - started, 1),
                            "reason": final[poison].get("error", {}).get("message")})  # fmt: skip
    assert final[poison]["status"] == "failed"
    # One try and MAX_CHUNK_RETRIES=2 retries each crashed the process; the next delivery gives up.
    assert final[poison]["error"]["message"] == "chunk 0 failed 3 times; giving up"
    assert deliveries == 4
    assert final[healthy]["status"] == "succeeded"
    assert worker.alive()


def test_soft_time_limit_fails_the_job_cleanly(faulty, real_rows) -> None:
    stack, _ = faulty
    good = real_rows["rows"][0]["values"]
    slow = stack.submit([dict(good, x12="__sleep__")]).json()["task_id"]
    final = stack.wait_all([slow], timeout=60)[slow]
    assert final["status"] == "failed"
    assert final["error"]["message"] == "chunk 0 exceeded the time limit of 3 s"


def test_after_the_hard_limit_the_process_is_replaced_and_the_next_job_succeeds(faulty, real_rows, report) -> None:
    stack, worker = faulty
    good = real_rows["rows"][0]["values"]
    pool_before = set(stack.children(worker))
    hung = stack.submit([dict(good, x12="__hang__")]).json()["task_id"]
    final = stack.wait_all([hung], timeout=60)[hung]
    assert final["status"] == "failed"
    assert final["error"]["message"] == "chunk 0 exceeded the hard time limit of 5 s"
    after = stack.submit([good] * 5).json()["task_id"]
    assert stack.wait_all([after], timeout=60)[after]["status"] == "succeeded"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        len(stack.children(worker)) == 2 and set(stack.children(worker)) - pool_before
    ):
        time.sleep(0.2)
    pool_after = set(stack.children(worker))
    report("hard time limit", {"pool before": sorted(pool_before), "pool after": sorted(pool_after)})
    assert len(pool_after) == 2 and pool_after - pool_before, "the killed pool process was not replaced"
