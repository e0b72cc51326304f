"""A job store that waits for replicas refuses, and fails, a job no replica took in time."""

import pytest

from jobs import JobStore, NewJob
from jobs.store import NotReplicated

RECORDS = [{"x12": str(i)} for i in range(5)]


def test_a_job_no_replica_acknowledges_is_failed_and_refused(redis_server, new_job: NewJob) -> None:
    client = redis_server.client(5)  # a primary with no replica at all
    jobs = JobStore(client, ttl_seconds=600, deadline_seconds=60, wait_replicas=1)
    with pytest.raises(NotReplicated, match="0 of 1"):
        jobs.create(new_job, RECORDS)
    failed = [job for job in (jobs.get(job_id) for job_id, _ in jobs.live()) if job is not None]
    assert failed == []  # it left the deadline index: nothing will run it
    codes = {client.hget(key, "error_code") for key in client.scan_iter("glmq:{*}:job")}
    assert b"not_replicated" in codes
    assert JobStore(client, 600, 60).create(new_job, RECORDS)[0]  # without waiting it is taken
    client.close()


def test_a_cluster_store_does_not_wait_for_replicas(redis_cluster) -> None:
    with pytest.raises(ValueError, match="not a cluster"):
        JobStore(redis_cluster.client(), 600, 60, wait_replicas=1)
