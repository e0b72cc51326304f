"""Redis Sentinel: the primary is killed under load, a replica is promoted, and no accepted job is left behind.

The job store and the broker both use the primary the sentinels name. Replication is asynchronous, so
writes the primary acknowledged just before it died may never reach the replica. The test measures
that window with a probe that writes numbered keys as fast as it can, and reports it; the API waits
for one replica before it accepts a job (REDIS_WAIT_REPLICAS=1), so accepted jobs are outside it.
The workers' writes are not waited for: a chunk result lost in the window is scored again, since the
watchdog re-drives a job that stalls.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import redis

from jobs.connection import connect
from settings import Settings
from tests.faults.conftest import FAULT_TIMINGS, FaultStack, submit_until_stopped
from tests.redis_topology import SentinelGroup

pytestmark = [pytest.mark.faults, pytest.mark.slow]


class Probe(threading.Thread):
    """Writes probe:<n> through Sentinel, one at a time, and remembers when each write was acknowledged."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(daemon=True)
        self.client = connect(settings, socket_timeout=1, socket_connect_timeout=1)
        self.acked: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            try:
                self.client.set(f"probe:{n}", 1)
            except redis.RedisError:
                time.sleep(0.05)
                continue
            self.acked[n] = time.monotonic()
            n += 1


@pytest.fixture
def sentinel_stack(tmp_path: Path, model_store_dir: Path):
    group = SentinelGroup.start(tmp_path / "redis")
    env = {
        "REDIS_URL": "redis://unused:6379/0",  # the sentinels name the primary
        "REDIS_SENTINELS": group.addresses,
        "REDIS_SENTINEL_MASTER": group.master,
        "REDIS_WAIT_REPLICAS": "1",
        "MODEL_STORE_DIR": str(model_store_dir),
        **FAULT_TIMINGS,
    }
    stack = FaultStack(tmp_path, env, redis=None)  # type: ignore[arg-type]  # no single server here
    try:
        yield stack, group
    finally:
        for process in [*stack.workers, *([stack.api] if stack.api else [])]:
            process.stop()
        group.stop()


def test_a_failover_under_load_ends_every_accepted_job(sentinel_stack, real_rows, report) -> None:
    stack, group = sentinel_stack
    stack.start_worker("w1", concurrency=2)
    stack.start_api()
    settings = Settings.from_env(stack.env)
    records = [r["values"] for r in real_rows["rows"]]
    batches = [[records[j % len(records)] for j in range(1_500 if i % 4 == 0 else 10)] for i in range(400)]
    accepted: list[str] = []
    answers: list[object] = []
    stop = threading.Event()
    loader = threading.Thread(target=submit_until_stopped, args=(stack, batches, accepted, answers, stop))
    probe = Probe(settings)
    loader.start()
    probe.start()
    deadline = time.monotonic() + 60
    while len(accepted) < 30 and loader.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(accepted) >= 30, f"the load did not get going: {answers[-5:]}"

    old = group.primary_port()
    accepted_before_kill = len(accepted)
    killed_at = time.monotonic()
    group.servers[old].signal_group(9)
    group.servers[old].popen.wait(10)
    while group.primary_port() == old:
        assert time.monotonic() - killed_at < 60, "no replica was promoted within 60 s"
        time.sleep(0.1)
    promoted_after = time.monotonic() - killed_at
    # As an orchestrator would: the dead server comes back, as a replica of the new primary.
    # Until then the API refuses new jobs (503): with REDIS_WAIT_REPLICAS=1, none can reach a replica.
    group.restart(old)
    first_accepted_after = None
    seen = len(accepted)
    while time.monotonic() - killed_at < promoted_after + 30 and loader.is_alive():
        if len(accepted) > seen:
            first_accepted_after = time.monotonic() - killed_at
            break
        time.sleep(0.05)
    time.sleep(3)
    stop.set()
    probe.stop.set()
    loader.join(60)
    probe.join(10)

    final = stack.wait_all(accepted, timeout=300)
    statuses = [final[t]["status"] for t in accepted]
    before = {n: at for n, at in probe.acked.items() if at < killed_at}
    new_primary = redis.Redis(port=group.primary_port(), socket_timeout=5)
    present = new_primary.mget([f"probe:{n}" for n in before]) if before else []
    lost = sorted(n for n, value in zip(before, present, strict=True) if value is None)
    window_ms = round((killed_at - before[lost[0]]) * 1000, 1) if lost else 0.0
    report(
        "sentinel failover, primary kill -9",
        {
            "jobs accepted": len(accepted),
            "accepted before the kill": accepted_before_kill,
            "succeeded": statuses.count("succeeded"),
            "failed with reason": sum(1 for t in accepted if final[t]["status"] == "failed" and final[t]["error"]),
            "reasons": sorted({final[t]["error"]["message"] for t in accepted if final[t]["status"] == "failed"}),
            "lost": statuses.count("lost"),
            "stuck": statuses.count("stuck"),
            "503 answers": answers.count(503),
            "seconds to promotion": round(promoted_after, 1),
            "seconds to the next accepted job": first_accepted_after and round(first_accepted_after, 1),
            "probe writes acknowledged before the kill": len(before),
            "of them lost": len(lost),
            "loss window ms (oldest lost ack before the kill)": window_ms,
        },
    )
    assert statuses.count("lost") == 0  # no accepted job vanished: each reached the replica first
    assert statuses.count("stuck") == 0
    for task_id in accepted:
        assert final[task_id]["status"] == "succeeded" or final[task_id]["error"]["message"]
    assert first_accepted_after is not None, "the API accepted no job after the failover"
