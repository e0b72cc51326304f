"""kill -9 of a worker's whole process group mid-load, with the production timings, on each broker.

Nothing is lost, no row is duplicated, and the dead worker's jobs end within seconds: its leases
lapse (Redis broker) or RabbitMQ delivers its messages again. A slow but live worker is left alone
first: its chunks outlive a lease, and its heartbeat keeps them. Only the visibility timeout is
shortened, and the Redis broker's late delivery of the dead worker's messages is then made at once,
to show that it changes nothing.
"""

import signal
import time

import pytest

from jobs import keys
from tests.conftest import BROKERS
from tests.faults.conftest import complete, ended_at

pytestmark = pytest.mark.faults

LARGE, SMALL, ROWS, SMALL_ROWS = 40, 20, 3_000, 5
SLOW_SECONDS = 7  # the victim's scoring: longer than a lease (LEASE_SECONDS=5)


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_worker_kill_loses_nothing_and_recovers_in_seconds(fault_stack, broker, real_rows, report) -> None:
    fault_stack.use_production_timings()
    fault_stack.env |= {"CHUNK_ROWS": "500", "VISIBILITY_TIMEOUT": "20"}
    # The victim scores slowly, so that it surely holds work when it dies; the survivor at full speed.
    slow = {"FAULT_SCORE_SECONDS": str(SLOW_SECONDS)}
    victim = fault_stack.start_worker("victim", app="tests.faults.faulty_worker", env=slow)
    fault_stack.start_api()
    records = [r["values"] for r in real_rows["rows"]]
    sizes = [ROWS] * LARGE + [SMALL_ROWS] * SMALL
    batches = [[records[j % len(records)] for j in range(n)] for n in sizes]
    client = fault_stack.redis.client()

    # The victim takes work first, then the survivor joins and the load goes on around it.
    first = fault_stack.submit_many(batches[:4])
    deadline = time.monotonic() + 30
    while client.zcard(keys.LEASES) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    leased_at = time.monotonic()
    fault_stack.start_worker("survivor")
    responses = first + fault_stack.submit_many(batches[4:])
    assert [r.status_code for r in responses] == [202] * len(sizes)
    task_ids = [r.json()["task_id"] for r in responses]
    # More than a lease into the victim's slow chunks: alive and renewing, they were not re-driven.
    time.sleep(max(0.0, leased_at + SLOW_SECONDS - 1 - time.monotonic()))
    held = sorted(member.decode() for member in client.zrange(keys.LEASES, 0, -1))
    redriven_while_alive = fault_stack.logged("re-drove")
    victim.signal_group(signal.SIGKILL)
    killed_at = time.time()

    final = fault_stack.wait_all(task_ids, timeout=120)
    after_kill = [ended_at(body) - killed_at for body in final.values() if "finished_at" in body]
    # RabbitMQ delivers a dead consumer's messages again at once; the Redis broker after its visibility timeout.
    late = fault_stack.deliver_unacked_now() if broker == "redis" else 0
    deadline = time.monotonic() + 30
    while fault_stack.logged("skipped chunk") < late and time.monotonic() < deadline:
        time.sleep(0.2)
    final_again = fault_stack.wait_all(task_ids, timeout=30)
    report(
        f"worker kill -9, production timings, {broker} broker",
        {
            "jobs": f"{LARGE} x {ROWS:,} rows + {SMALL} x {SMALL_ROWS}",
            "chunks leased by the victim at the kill": len(held),
            "re-driven while it lived": redriven_while_alive,
            "re-driven on a lapsed lease": fault_stack.logged("its lease lapsed"),
            "succeeded complete": sum(complete(final[t], n) for t, n in zip(task_ids, sizes, strict=True)),
            "lost or stuck": sum(final[t]["status"] in ("lost", "stuck") for t in task_ids),
            "chunks started twice": fault_stack.redelivered_chunks(task_ids),
            "late deliveries": late,
            "late deliveries skipped": fault_stack.logged("skipped chunk"),
            "seconds from kill to last job ended": round(max(after_kill), 1),
        },
    )
    assert held, "the victim held no chunk when it was killed"
    assert redriven_while_alive == 0
    assert all(complete(final[t], n) for t, n in zip(task_ids, sizes, strict=True))
    # Late deliveries changed nothing: each job counted its rows once and its results are the same.
    assert fault_stack.logged("skipped chunk") >= late
    for task_id, rows in zip(task_ids, sizes, strict=True):
        assert final_again[task_id]["results"] == final[task_id]["results"]
        assert int(client.hget(keys.job(task_id), "rows_done")) == rows
    if broker == "redis":
        assert late >= 1
