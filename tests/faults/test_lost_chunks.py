"""Chunks whose messages or payload vanished are re-driven or failed by the watchdog, never left hanging."""

import time

import pytest

from jobs import keys
from jobs.broker import QUEUE

pytestmark = pytest.mark.faults


def test_a_job_whose_messages_were_lost_is_re_driven(fault_stack, real_rows, report) -> None:
    fault_stack.start_api()
    records = [r["values"] for r in real_rows["rows"]] * 200  # 1,200 rows: 3 chunks of 500
    task_id = fault_stack.submit(records).json()["task_id"]
    client = fault_stack.redis.client()
    assert client.llen(QUEUE) == 3
    client.delete(QUEUE)  # the messages are gone, as if Redis lost them in a crash
    fault_stack.start_worker("w1", concurrency=2)
    started = time.monotonic()
    final = fault_stack.wait_all([task_id], timeout=60)[task_id]
    report("lost messages", {"status": final["status"], "seconds to recover": round(time.monotonic() - started, 1)})
    assert final["status"] == "succeeded"
    assert [r["row"] for r in final["results"]] == list(range(1_200))


def test_a_job_whose_payload_was_lost_fails_with_a_reason(fault_stack, real_rows) -> None:
    fault_stack.start_api()
    task_id = fault_stack.submit([r["values"] for r in real_rows["rows"]]).json()["task_id"]
    fault_stack.redis.client().delete(keys.payload(task_id, 0))
    fault_stack.start_worker("w1", concurrency=1)
    final = fault_stack.wait_all([task_id], timeout=60)[task_id]
    assert final["status"] == "failed"
    assert final["error"]["message"] == "the payload of chunk 0 expired before it ran"


def test_a_job_past_its_deadline_is_failed(fault_stack, real_rows) -> None:
    fault_stack.env["JOB_DEADLINE_SECONDS"] = "2"
    fault_stack.start_api()
    task_id = fault_stack.submit([r["values"] for r in real_rows["rows"]]).json()["task_id"]
    fault_stack.redis.client().delete(QUEUE)
    time.sleep(2)
    fault_stack.start_worker("w1", concurrency=1)
    final = fault_stack.wait_all([task_id], timeout=30)[task_id]
    assert final["status"] == "failed"
    assert final["error"]["message"] == "deadline exceeded: 0 of 6 rows scored"
