"""Redis dies mid-load (kill -9) or restarts cleanly: 503 while down, nothing lost or stuck after.

The kill -9 test runs with the production timings on each broker: unfinished work is re-driven within
seconds of Redis answering again, by lapsed leases and by the watchdog's pass after a restart.
"""

import re
import threading
import time

import pytest

from jobs import keys
from tests.conftest import BROKERS
from tests.faults.conftest import complete, ended_at, submit_until_stopped

pytestmark = pytest.mark.faults


def test_redis_graceful_restart_loses_no_accepted_job(fault_stack, real_rows, report) -> None:
    fault_stack.start_worker("w1", concurrency=2)
    fault_stack.start_api()
    records = [r["values"] for r in real_rows["rows"]]
    batches = [[records[j % len(records)] for j in range(1_500 if i % 4 == 0 else 10)] for i in range(300)]
    accepted: list[str] = []
    answers: list[object] = []
    stop = threading.Event()
    loader = threading.Thread(target=submit_until_stopped, args=(fault_stack, batches, accepted, answers, stop))
    loader.start()
    deadline = time.monotonic() + 60
    while len(accepted) < 30 and loader.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(accepted) >= 30, f"the load did not get going: {answers[-5:]}"

    fault_stack.redis.stop(kill=False)
    down_post = fault_stack.submit(records[:1], timeout=15)
    down_get = fault_stack.status(accepted[0])
    time.sleep(2)
    fault_stack.redis.start()
    restarted_at = time.monotonic()

    probe = None
    while time.monotonic() - restarted_at < 30:
        response = fault_stack.submit(records[:1], timeout=10)
        if response.status_code == 202:
            body = fault_stack.wait_all([response.json()["task_id"]], timeout=30 - (time.monotonic() - restarted_at))
            if next(iter(body.values()))["status"] == "succeeded":
                probe = time.monotonic() - restarted_at
                break
        time.sleep(0.5)
    stop.set()
    loader.join(60)

    final = fault_stack.wait_all(accepted, timeout=300)
    statuses = [final[t]["status"] for t in accepted]
    report(
        "redis graceful restart",
        {
            "jobs accepted": len(accepted),
            "succeeded": statuses.count("succeeded"),
            "failed with reason": sum(1 for t in accepted if final[t]["status"] == "failed" and final[t]["error"]),
            "lost": statuses.count("lost"),
            "stuck": statuses.count("stuck"),
            "503 answers during outage": answers.count(503),
            "seconds until workers consumed again": None if probe is None else round(probe, 1),
            "seconds until all finished": round(time.monotonic() - restarted_at, 1),
        },
    )
    for response in (down_post, down_get):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "redis_unavailable"
    assert probe is not None and probe < 30, "workers did not consume again within 30 s of the restart"
    assert statuses.count("stuck") == 0
    assert statuses.count("lost") == 0
    for task_id in accepted:
        assert final[task_id]["status"] == "succeeded" or final[task_id]["error"]["message"]
    assert statuses.count("succeeded") == len(accepted)


JOBS, ROWS = 40, 3_000


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_redis_kill_9_loses_nothing_and_recovers_in_seconds(fault_stack, broker, real_rows, report) -> None:
    fault_stack.use_production_timings()
    fault_stack.env["CHUNK_ROWS"] = "500"
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
    down_post = fault_stack.submit(records[:1], timeout=15)
    down_get = fault_stack.status(task_ids[0])
    time.sleep(2)
    fault_stack.redis.start()
    answering_at = time.time()

    final = fault_stack.wait_all(task_ids, timeout=180)
    statuses = [final[t]["status"] for t in task_ids]
    after = [ended_at(body) - answering_at for body in final.values() if "finished_at" in body]
    restarted = sum(int(n) for n in re.findall(r"re-drove (\d+) unleased", fault_stack.all_logs()))
    report(
        f"redis kill -9 and AOF restart, production timings, {broker} broker",
        {
            "jobs": f"{JOBS} x {ROWS:,} rows",
            "unfinished at the crash": unfinished,
            "succeeded complete": sum(complete(final[t], ROWS) for t in task_ids),
            "failed": statuses.count("failed"),
            "lost": statuses.count("lost"),
            "stuck": statuses.count("stuck"),
            "re-driven on a lapsed lease": fault_stack.logged("its lease lapsed"),
            "re-driven after the restart, unleased": restarted,
            "seconds from redis answering to last job ended": round(max(after), 1),
        },
    )
    for response in (down_post, down_get):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "redis_unavailable"
    assert statuses.count("lost") == statuses.count("stuck") == 0
    assert all(complete(final[t], ROWS) for t in task_ids), statuses
