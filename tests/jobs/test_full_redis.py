"""A Redis past maxmemory (noeviction) still lets the service fail jobs and sweep, and refuses new jobs early."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from jobs import JobStatus, JobStore, NewJob, keys
from stack.commands import redis_args
from stack.processes import free_port, redis_server_binary, spawn, wait_until

RECORDS = [{"x12": str(i)} for i in range(5)]


@pytest.fixture
def full(tmp_path: Path) -> Iterator[redis.Redis]:
    port = free_port()
    argv = [redis_server_binary(), *redis_args(port, str(tmp_path)), "--maxmemory", "3mb"]
    server = spawn("full-redis", argv, tmp_path / "redis.log")
    client = redis.Redis(port=port, socket_timeout=5)
    try:
        wait_until(lambda: server.alive() and client.ping(), 20, "the small redis")
        yield client
    finally:
        client.close()
        server.stop()


def fill(client: redis.Redis) -> int:
    for n in range(100_000):
        try:
            client.set(f"filler:{n}", "x" * 1_000)
        except redis.OutOfMemoryError:
            # Past the limit for sure, not just at it: 200 kB more, by the same door as the service's scripts.
            overshoot = "redis.call('PERSIST', KEYS[1]) redis.call('SET', KEYS[1], ARGV[1]) return 1"
            client.eval(overshoot, 1, "filler:overshoot", "x" * 200_000)
            return n
    raise AssertionError("redis never filled")


def test_a_full_redis_refuses_new_jobs_but_a_job_can_still_fail(full: redis.Redis, new_job: NewJob) -> None:
    jobs = JobStore(full, ttl_seconds=600, deadline_seconds=60)
    assert jobs.has_headroom()
    job_id, _ = jobs.create(new_job, RECORDS)
    filled = fill(full)
    with pytest.raises(redis.OutOfMemoryError):
        full.hset(keys.job(job_id), "status", "failed")  # what fail_job.lua did first before
    with pytest.raises(redis.OutOfMemoryError):
        jobs.start_chunk(job_id, 0, max_deliveries=3)
    assert not full.exists(keys.attempts(job_id))  # refused whole, nothing half-written
    jobs = JobStore(full, ttl_seconds=600, deadline_seconds=60)  # no cached INFO
    assert not jobs.has_headroom()
    with pytest.raises(redis.OutOfMemoryError):
        jobs.create(new_job, RECORDS)
    assert jobs.take_lock(keys.WATCHDOG_LOCK, "me", 5)
    assert not jobs.take_lock(keys.WATCHDOG_LOCK, "other", 5)
    assert jobs.fail(job_id, "deadline exceeded: 0 of 5 rows scored")
    job = jobs.get(job_id)
    assert filled > 0
    assert (job.status, job.error) == (JobStatus.FAILED, "deadline exceeded: 0 of 5 rows scored")
    assert full.llen(keys.ended(job_id)) == 1
    assert not full.exists(keys.payload(job_id, 0))
