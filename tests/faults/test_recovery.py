"""Recovery in seconds, with the production timings: leases, not stall timers, see a death.

The time limits, stall timer and sweep interval keep their defaults (60 s, 90 s, 30 s, 10 s), so
anything that waited on them would take two minutes; only the visibility timeout is shortened, so
that the Redis broker's late redelivery of the dead worker's messages happens within the test.
"""

from __future__ import annotations

import json
import re
import signal
import time
from datetime import datetime

import pytest

from jobs import keys
from tests.conftest import BROKERS

pytestmark = pytest.mark.faults

JOBS, ROWS, CHUNK_ROWS = 40, 3_000, 500
PRODUCTION_TIMINGS = ("TASK_SOFT_TIME_LIMIT", "TASK_TIME_LIMIT", "STALL_SECONDS", "WATCHDOG_INTERVAL_SECONDS")


def production_timings(stack) -> None:
    for name in PRODUCTION_TIMINGS:
        stack.env.pop(name)
    stack.env |= {"CHUNK_ROWS": str(CHUNK_ROWS), "VISIBILITY_TIMEOUT": "20"}


def ended_at(body: dict) -> float:
    return datetime.fromisoformat(body["finished_at"]).timestamp()


def deliver_late(client) -> int:
    """Deliver again what the dead worker held, now, as the Redis broker would after its visibility timeout.

    kombu does it later (the timeout, then a scan every 100 s at most); this returns the messages to
    the queue its own way, and says how many.
    """
    held = client.hgetall(keys.UNACKED)
    for tag, record in held.items():
        message, _, routing_key = json.loads(record)
        client.lpush(routing_key, json.dumps(message))
        client.hdel(keys.UNACKED, tag)
        client.zrem("unacked_index", tag)
    return len(held)


def complete(body: dict, rows: int) -> bool:
    return body["status"] == "succeeded" and [r["row"] for r in body.get("results", [])] == list(range(rows))


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_a_killed_worker_is_seen_by_its_lapsed_leases(fault_stack, broker, real_rows, report) -> None:
    production_timings(fault_stack)
    # The victim scores slowly, so that it surely holds chunks when it dies; the survivor at full speed.
    victim = fault_stack.start_worker("victim", app="tests.faults.faulty_worker", env={"FAULT_SCORE_SECONDS": "3"})
    fault_stack.start_worker("survivor")
    fault_stack.start_api()
    records = [r["values"] for r in real_rows["rows"]]
    batch = [records[j % len(records)] for j in range(ROWS)]
    client = fault_stack.redis.client()

    responses = fault_stack.submit_many([batch] * JOBS)
    assert [r.status_code for r in responses] == [202] * JOBS
    task_ids = [r.json()["task_id"] for r in responses]
    deadline = time.monotonic() + 30
    while client.zcard(keys.LEASES) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    held = sorted(member.decode() for member in client.zrange(keys.LEASES, 0, -1))
    victim.signal_group(signal.SIGKILL)
    killed_at = time.time()
    assert held, "the victim held no chunk when it was killed"

    final = fault_stack.wait_all(task_ids, timeout=120)
    after_kill = [ended_at(body) - killed_at for body in final.values() if body["status"] == "succeeded"]
    # RabbitMQ delivers a dead consumer's messages again at once; the Redis broker after its visibility timeout.
    late = deliver_late(client) if broker == "redis" else 0
    deadline = time.monotonic() + 30
    while fault_stack.logged("skipped chunk") < late and time.monotonic() < deadline:
        time.sleep(0.2)
    final_again = fault_stack.wait_all(task_ids, timeout=30)
    report(
        f"worker kill -9, production timings, {broker} broker",
        {
            "jobs": len(task_ids),
            "chunks leased at the kill": len(held),
            "re-driven on a lapsed lease": fault_stack.logged("its lease lapsed"),
            "succeeded complete": sum(complete(final[t], ROWS) for t in task_ids),
            "lost or stuck": sum(final[t]["status"] in ("lost", "stuck") for t in task_ids),
            "chunks started twice": fault_stack.redelivered_chunks(task_ids),
            "late deliveries": late,
            "late deliveries skipped": fault_stack.logged("skipped chunk"),
            "seconds from kill to last job ended": round(max(after_kill), 1),
        },
    )
    assert all(complete(final[t], ROWS) for t in task_ids)
    assert fault_stack.logged("skipped chunk") >= late
    if broker == "redis":
        assert late >= 1
    # Late deliveries changed nothing: each job counted its rows once and its results are the same.
    for task_id in task_ids:
        assert final_again[task_id]["results"] == final[task_id]["results"]
        job = client.hgetall(keys.job(task_id))
        assert int(job[b"rows_done"]) == ROWS


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_after_a_redis_crash_unfinished_work_is_re_driven_in_seconds(fault_stack, broker, real_rows, report) -> None:
    production_timings(fault_stack)
    slow = {"FAULT_SCORE_SECONDS": "0.1"}  # so that chunks are in flight, not done in a blink
    for name in ("w1", "w2"):
        fault_stack.start_worker(name, app="tests.faults.faulty_worker", env=slow)
    fault_stack.start_api()
    records = [r["values"] for r in real_rows["rows"]]
    batch = [records[j % len(records)] for j in range(ROWS)]
    client = fault_stack.redis.client()

    responses = fault_stack.submit_many([batch] * JOBS)
    assert [r.status_code for r in responses] == [202] * JOBS
    task_ids = [r.json()["task_id"] for r in responses]
    deadline = time.monotonic() + 30
    while client.zcard(keys.LEASES) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    unfinished = client.zcard(keys.DEADLINES)
    fault_stack.redis.stop(kill=True)
    time.sleep(2)
    fault_stack.redis.start()
    answering_at = time.time()

    final = fault_stack.wait_all(task_ids, timeout=180)
    statuses = [final[t]["status"] for t in task_ids]
    after = [ended_at(body) - answering_at for body in final.values() if "finished_at" in body]
    report(
        f"redis kill -9 and AOF restart, production timings, {broker} broker",
        {
            "jobs": len(task_ids),
            "unfinished at the crash": unfinished,
            "succeeded complete": sum(complete(final[t], ROWS) for t in task_ids),
            "failed": statuses.count("failed"),
            "lost": statuses.count("lost"),
            "stuck": statuses.count("stuck"),
            "re-driven on a lapsed lease": fault_stack.logged("its lease lapsed"),
            "re-driven after the restart as unleased": sum(
                int(n) for n in re.findall(r"re-drove (\d+) unleased", fault_stack.all_logs())
            ),
            "seconds from redis answering to last job ended": round(max(after), 1),
        },
    )
    assert statuses.count("lost") == statuses.count("stuck") == 0
    assert all(complete(final[t], ROWS) for t in task_ids), statuses


def test_slow_live_work_keeps_its_lease_and_runs_once(fault_stack, real_rows, report) -> None:
    production_timings(fault_stack)
    # Scoring takes 12 s: more than two leases (LEASE_SECONDS=5), less than the soft limit (60 s).
    fault_stack.start_worker("slow", app="tests.faults.faulty_worker", env={"FAULT_SCORE_SECONDS": "12"})
    fault_stack.start_api()
    records = [r["values"] for r in real_rows["rows"]]
    # A chunk of a big job, and a micro-batch of one small job: each holds a lease of its own kind.
    sizes = (100, 6)
    responses = [fault_stack.submit([records[i % len(records)] for i in range(rows)]) for rows in sizes]
    assert [r.status_code for r in responses] == [202, 202]
    task_ids = [r.json()["task_id"] for r in responses]
    client = fault_stack.redis.client()
    deadline = time.monotonic() + 10
    while not (client.zcard(keys.LEASES) and client.zcard(keys.LEASED)) and time.monotonic() < deadline:
        time.sleep(0.05)
    fault_stack.start_worker("idle")  # free to take the work, were it re-driven
    final = fault_stack.wait_all(task_ids, timeout=60)
    runs = fault_stack.chunk_runs()
    report(
        "slow live work",
        {"statuses": [final[t]["status"] for t in task_ids], "runs": [runs[(t, 0)] for t in task_ids],
         "re-driven": fault_stack.logged("re-drove"), "put back in line": fault_stack.logged("lapsed leases")},
    )  # fmt: skip
    assert [complete(final[t], rows) for t, rows in zip(task_ids, sizes, strict=True)] == [True, True]
    assert [runs[(t, 0)] for t in task_ids] == [1, 1]
    assert fault_stack.redelivered_chunks(task_ids) == 0
    assert fault_stack.logged("re-drove") == fault_stack.logged("lapsed leases") == 0
