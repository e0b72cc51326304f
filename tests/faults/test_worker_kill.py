"""kill -9 a worker's whole process group, then one pool process: no job lost, no row duplicated."""

import os
import signal
import time

import pytest

pytestmark = pytest.mark.faults

SMALL, LARGE = 20, 4_000


def check_complete(body: dict, rows: int) -> bool:
    results = body.get("results", [])
    return body["status"] == "succeeded" and [r["row"] for r in results] == list(range(rows))


def test_worker_kill_loses_nothing(fault_stack, real_rows, report) -> None:
    victim = fault_stack.start_worker("victim", concurrency=2)
    survivor = fault_stack.start_worker("survivor", concurrency=2)
    fault_stack.start_api()
    records = [r["values"] for r in real_rows["rows"]]
    sizes = [LARGE if i % 5 == 0 else SMALL for i in range(110)]
    batches = [[records[j % len(records)] for j in range(n)] for n in sizes]

    responses = fault_stack.submit_many(batches[:40])
    # Kill mid-load: wait until the victim has scored something, so chunks are in flight.
    deadline = time.monotonic() + 30
    while "scored chunk" not in victim.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    victim.signal_group(signal.SIGKILL)
    killed_at = time.monotonic()
    responses += fault_stack.submit_many(batches[40:80])
    children = fault_stack.children(survivor)
    assert children, "the survivor has no pool processes"
    os.kill(children[0], signal.SIGKILL)
    responses += fault_stack.submit_many(batches[80:])

    assert [r.status_code for r in responses] == [202] * len(batches)
    task_ids = [r.json()["task_id"] for r in responses]
    final = fault_stack.wait_all(task_ids, timeout=300)
    recovered_s = time.monotonic() - killed_at

    complete = [check_complete(final[t], n) for t, n in zip(task_ids, sizes)]
    runs = fault_stack.chunk_runs()
    twice = sum(1 for count in runs.values() if count > 1)
    report(
        "worker kill",
        {
            "jobs accepted": len(task_ids),
            "succeeded complete": sum(complete),
            "lost or stuck": sum(final[t]["status"] in ("lost", "stuck") for t in task_ids),
            "failed": sum(final[t]["status"] == "failed" for t in task_ids),
            "chunks": sum(1 for _ in runs),
            "chunks started twice": fault_stack.redelivered_chunks(task_ids),
            "chunks completed twice": twice,
            "seconds from kill to all done": round(recovered_s, 1),
        },
    )
    assert all(complete), [final[t].get("status") for t, ok in zip(task_ids, complete) if not ok][:5]
    assert recovered_s < 300
