"""A Redis at maxmemory, filled through the API: every accepted job ends, new ones are refused, then accepted again."""

import collections
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from jobs import keys
from stack.commands import redis_args
from stack.processes import free_port, redis_server_binary, spawn, wait_until
from tests.conftest import RedisServer
from tests.faults.conftest import FaultStack

pytestmark = pytest.mark.faults
MAXMEMORY = 6 * 1024 * 1024
DEADLINE = 20
TTL = 35


@pytest.fixture
def full_stack(tmp_path: Path, model_store_dir: Path) -> Iterator[FaultStack]:
    port = free_port()
    argv = [redis_server_binary(), *redis_args(port, str(tmp_path / "redis")), "--maxmemory", str(MAXMEMORY)]
    (tmp_path / "redis").mkdir()
    process = spawn("redis", argv, tmp_path / "logs" / "redis.log")
    server = RedisServer(port, tmp_path / "redis", tmp_path / "logs", process)
    client = redis.Redis(port=port, socket_timeout=1)
    env = {
        "REDIS_URL": server.url, "MODEL_STORE_DIR": str(model_store_dir), "CHUNK_ROWS": "500",
        "WATCHDOG_INTERVAL_SECONDS": "1", "STALL_SECONDS": "2", "VISIBILITY_TIMEOUT": "20",
        "TASK_SOFT_TIME_LIMIT": "3", "TASK_TIME_LIMIT": "5", "MAX_CHUNK_RETRIES": "2",
        "JOB_DEADLINE_SECONDS": str(DEADLINE), "RESULT_TTL_SECONDS": str(TTL),
    }  # fmt: skip
    stack = FaultStack(tmp_path, env, server)
    try:
        wait_until(lambda: process.alive() and client.ping(), 20, "the small redis")
        yield stack
    finally:
        for worker in [*stack.workers, *([stack.api] if stack.api else [])]:
            worker.stop()
        process.stop()


def test_a_full_redis_refuses_new_jobs_and_ends_every_accepted_one(full_stack, real_rows, report) -> None:
    stack = full_stack
    # A worker cannot start on a Redis past maxmemory (kombu declares its queue binding with a write): it
    # runs from the start, as in production, and results fill Redis until their TTL.
    worker = stack.start_worker("w1", concurrency=2)
    stack.start_api()
    client = stack.redis.client()
    values = [r["values"] for r in real_rows["rows"]]
    big, small = values * 200, values[:5]  # 1,200 rows in 3 chunks; 5 rows for a micro-batch
    accepted: list[str] = []
    refusals = []
    started = time.monotonic()
    for n in range(100):  # rounds of 4 at once, so that payloads pile up while the worker scores
        for response in stack.submit_many([big, big, big, small] if n % 2 else [big, small, small, small]):
            if response.status_code == 202:
                accepted.append(response.json()["task_id"])
            else:
                refusals.append(response)
        if len(refusals) >= 3:
            break
    filled = client.info("memory")["used_memory"]
    final = stack.wait_all(accepted, timeout=DEADLINE + 30)
    ended = time.monotonic() - started
    peak = client.info("memory")["used_memory_peak"]
    statuses = collections.Counter(body["status"] for body in final.values())
    reasons = collections.Counter(body["error"]["message"].split(":")[0] for body in final.values()
                                  if body["status"] == "failed")  # fmt: skip
    # After the results expire, the service takes jobs again, and they succeed.
    again = None
    wait_from = time.monotonic()
    while time.monotonic() - wait_from < TTL + 30:
        response = stack.submit(small)
        if response.status_code == 202:
            again = response.json()["task_id"]
            break
        time.sleep(1)
    accepted_again_after = time.monotonic() - wait_from
    after = stack.wait_all([again], timeout=60)[again]["status"] if again else "refused"
    report("redis full", {
        "maxmemory MB": MAXMEMORY / 2**20, "accepted": len(accepted), "refused": len(refusals),
        "used at refusal MB": round(filled / 2**20, 2), "peak MB": round(peak / 2**20, 2), "statuses": dict(statuses),
        "failure reasons": dict(reasons), "all ended after s": round(ended, 1),
        "accepted again after s": round(accepted_again_after, 1), "next job": after,
        "live jobs left": client.zcard(keys.DEADLINES),
        "worker writes refused": worker.log_path.read_text().count("redis is full"),
    })  # fmt: skip
    assert len(accepted) >= 4
    assert all(r.status_code == 503 and r.json()["error"]["code"] == "redis_full" for r in refusals), [
        (r.status_code, r.text[:300]) for r in refusals
    ]
    assert all(r.headers["Retry-After"] for r in refusals)
    assert len(refusals) >= 3
    assert worker.alive()
    assert set(statuses) <= {"succeeded", "failed"}, final
    assert all(body["error"]["message"] for body in final.values() if body["status"] == "failed")
    assert after == "succeeded"
