import json
import time
from dataclasses import replace

import pytest
from redis.crc import key_slot

from jobs import JobStatus, JobStore, NewJob, keys
from jobs.store import Finished, FinishOutcome, StartOutcome
from tests.redis_topology import every_key, info_of_each

RECORDS = [{"x12": str(i)} for i in range(5)]


def results(chunk: int, rows: int) -> bytes:
    return json.dumps([{"row": chunk * 2 + i} for i in range(rows)]).encode()


def test_create_writes_the_record_and_payload_chunks(jobs: JobStore, new_job: NewJob) -> None:
    job_id, kick = jobs.create(new_job, RECORDS)
    chunks = range(3)
    assert kick is False and jobs.ready_backlog() == (0, False)  # a big job waits for its chunk messages
    job = jobs.get(job_id)
    assert (job.id, job.status, job.rows, job.chunks, job.rows_done) == (job_id, JobStatus.QUEUED, 5, 3, 0)
    assert (job.model_name, job.model_version, job.threshold) == ("glm26", 1, 0.712)
    deliveries = [jobs.start_chunk(job_id, k, max_deliveries=3) for k in chunks]
    assert [outcome for outcome, _ in deliveries] == [StartOutcome.RUN] * 3
    assert [delivery.records for _, delivery in deliveries] == [RECORDS[0:2], RECORDS[2:4], RECORDS[4:5]]


def test_start_reads_the_running_job_in_the_same_call(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    _, delivery = jobs.start_chunk(job_id, 1, max_deliveries=3)
    assert delivery.job.status == JobStatus.RUNNING
    assert delivery.job.started_at is not None
    assert delivery.job == jobs.get(job_id)


def test_a_chunk_finished_twice_counts_once(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    assert jobs.start_chunk(job_id, 0, max_deliveries=3)[0] == StartOutcome.RUN
    assert jobs.get(job_id).status == JobStatus.RUNNING
    assert jobs.finish_chunk(job_id, 0, 2, results(0, 2)) == FinishOutcome.COUNTED
    assert jobs.finish_chunk(job_id, 0, 2, results(0, 2)) == FinishOutcome.DUPLICATE  # a redelivery
    assert jobs.get(job_id).rows_done == 2
    assert jobs.finish_chunk(job_id, 2, 1, results(2, 1)) == FinishOutcome.COUNTED
    assert jobs.finish_chunk(job_id, 1, 2, results(1, 2)) == FinishOutcome.SUCCEEDED
    job = jobs.get(job_id)
    assert (job.status, job.rows_done) == (JobStatus.SUCCEEDED, 5)
    assert json.loads(jobs.results(job_id, 5, 2)) == [{"row": i} for i in range(5)]
    assert every_key(jobs.client, keys.payload(job_id, 0)) == []  # a finished chunk's payload is dropped
    assert jobs.live() == []  # and the finished job leaves the deadline index


def test_a_page_of_results_reads_only_the_rows_asked_for(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    for chunk, rows in ((0, 2), (1, 2), (2, 1)):
        jobs.finish_chunk(job_id, chunk, rows, results(chunk, rows))
    every = [{"row": i} for i in range(5)]
    for start in range(7):
        for stop in range(start, 8):
            page = jobs.results(job_id, 5, 2, range(start, stop))
            assert json.loads(page) == every[start:stop], (start, stop)
    jobs.client.delete(keys.result(job_id, 0))
    assert jobs.results(job_id, 5, 2, range(2, 5)) is not None  # the page does not need chunk 0
    assert jobs.results(job_id, 5, 2, range(1, 3)) is None


def test_a_finished_chunk_is_not_started_again(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    jobs.finish_chunk(job_id, 0, 2, results(0, 2))
    assert jobs.start_chunk(job_id, 0, max_deliveries=3) == (StartOutcome.SKIP, None)


def test_deliveries_beyond_the_budget_fail_the_job(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    outcomes = [jobs.start_chunk(job_id, 1, max_deliveries=2)[0] for _ in range(3)]
    assert outcomes == [StartOutcome.RUN, StartOutcome.RUN, StartOutcome.GAVE_UP]
    job = jobs.get(job_id)
    assert job.status == JobStatus.FAILED
    assert job.error == "chunk 1 failed 2 times; giving up"
    assert jobs.live() == []
    assert jobs.start_chunk(job_id, 0, max_deliveries=2)[0] == StartOutcome.SKIP
    assert jobs.finish_chunk(job_id, 0, 2, results(0, 2)) == FinishOutcome.GONE  # a failed job takes no more


def test_fail_keeps_the_first_outcome(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(replace(new_job, rows=2), RECORDS[:2])
    jobs.finish_chunk(job_id, 0, 2, results(0, 2))
    assert jobs.fail(job_id, "too late") is False
    assert jobs.get(job_id).status == JobStatus.SUCCEEDED


def test_fail_drops_the_payload_and_keeps_a_code(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    assert jobs.fail(job_id, "cancelled by the client", code="job_cancelled") is True
    job = jobs.get(job_id)
    assert (job.status, job.error, job.error_code) == (JobStatus.FAILED, "cancelled by the client", "job_cancelled")
    assert every_key(jobs.client, f"*{job_id}*:payload:*") == []
    assert jobs.live() == []


def test_every_key_expires(jobs: JobStore, new_job: NewJob, redis_db) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    jobs.start_chunk(job_id, 0, max_deliveries=3)
    jobs.finish_chunk(job_id, 0, 2, results(0, 2))
    found = every_key(redis_db, f"*{job_id}*")
    assert len(found) == 7  # job, 2 payloads left, attempts, done set, one result and the event stream
    assert all(0 < redis_db.ttl(key) <= 600 for key in found)


def test_every_key_of_a_job_hashes_to_one_cluster_slot(jobs: JobStore, new_job: NewJob, redis_db) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    jobs.start_chunk(job_id, 0, max_deliveries=3)
    jobs.finish_chunk(job_id, 0, 2, results(0, 2))
    found = every_key(redis_db, f"*{job_id}*")
    slots = {key_slot(key) for key in found}  # the slot Redis Cluster would give each key
    assert len(found) == 7 and len(slots) == 1
    assert all(key.decode().startswith(f"glmq:{{{job_id}}}:") for key in found)


def test_rows_must_match_the_records(jobs: JobStore, new_job: NewJob) -> None:
    with pytest.raises(ValueError, match="5 rows but 2 records"):
        jobs.create(new_job, RECORDS[:2])


def test_an_unknown_job_reads_as_none(jobs: JobStore) -> None:
    assert jobs.get("0" * 32) is None
    assert jobs.start_chunk("0" * 32, 0, max_deliveries=3) == (StartOutcome.SKIP, None)


def test_the_scripts_are_loaded_from_their_files_and_again_after_a_script_flush(
    jobs: JobStore, new_job: NewJob, redis_db
) -> None:
    assert "SADD" in jobs.scripts.source("finish_chunk")
    redis_db.script_flush()  # as after a restart: Redis no longer knows the scripts
    job_id, _ = jobs.create(replace(new_job, rows=1), RECORDS[:1], small=True)
    assert jobs.start_chunks([(job_id, 0)], max_deliveries=3)[0][0] == StartOutcome.RUN
    redis_db.script_flush()
    assert jobs.finish_chunks([Finished(job_id, 0, 1, results(0, 1))]) == [FinishOutcome.SUCCEEDED]
    assert jobs.get(job_id).status == JobStatus.SUCCEEDED


def test_a_pipeline_of_scripts_costs_one_round_trip(jobs: JobStore, new_job: NewJob, redis_db) -> None:
    small = replace(new_job, rows=1)
    jobs.create(small, RECORDS[:1], small=True)  # the scripts are loaded by now

    def calls() -> dict[str, int]:
        each = info_of_each(redis_db, "commandstats")  # on a cluster, summed over the primaries
        names = ("script", "evalsha", "zadd")
        return {name: sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for stats in each) for name in names}

    before = calls()
    jobs.create(small, RECORDS[:1], small=True)
    after = calls()
    # The deadline, then the record and payload and the place in line by SHA: no SCRIPT EXISTS first.
    assert {name: after[name] - before[name] for name in after} == {"script": 0, "evalsha": 2, "zadd": 1}


def test_small_jobs_wait_in_line_and_one_drain_message_serves_them(jobs: JobStore, new_job: NewJob) -> None:
    small = replace(new_job, rows=1)
    created = [jobs.create(small, RECORDS[:1], small=True) for _ in range(5)]
    ids = [job_id for job_id, _ in created]
    assert [kick for _, kick in created] == [True, False, False, False, False]  # one message on its way is enough
    assert jobs.ready_backlog() == (5, True)
    taken = jobs.take_ready(max_rows=3, lease_seconds=30, holder="t1")
    assert [ready.job_id for ready in taken] == ids[:3]  # oldest first, up to the row cap
    assert jobs.ready_backlog() == (2, False)  # taking clears the kick: the next job in line sends one
    assert jobs.create(small, RECORDS[:1], small=True)[1] is True
    jobs.release(taken, "t1")
    assert jobs.requeue_lapsed(now=time.time() + 60) == 0  # released jobs are not put back


def test_a_job_bigger_than_the_row_cap_is_taken_alone(jobs: JobStore, new_job: NewJob) -> None:
    big, _ = jobs.create(replace(new_job, rows=5, chunk_rows=5), RECORDS, small=True)
    assert [(r.job_id, r.rows) for r in jobs.take_ready(max_rows=3, lease_seconds=30, holder="t1")] == [(big, 5)]


def test_an_ending_job_leaves_a_token_that_wakes_every_waiter(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(replace(new_job, rows=2), RECORDS[:2])
    assert jobs.wait_ended(job_id, timeout=0.05) is False
    jobs.finish_chunk(job_id, 0, 2, results(0, 2))
    assert jobs.wait_ended(job_id, timeout=1) is True
    assert jobs.wait_ended(job_id, timeout=1) is True  # the token stays for the next waiter
    failed, _ = jobs.create(new_job, RECORDS)
    jobs.fail(failed, "cancelled by the client")
    assert jobs.wait_ended(failed, timeout=1) is True


def test_a_holder_knows_its_batch_and_a_requeued_batch_runs_one_job_at_a_time(jobs: JobStore, new_job: NewJob) -> None:
    small = replace(new_job, rows=1)
    ids = [jobs.create(small, RECORDS[:1], small=True)[0] for _ in range(3)]
    taken = jobs.take_ready(max_rows=10, lease_seconds=30, holder="t1")
    assert jobs.held("t1") == taken
    assert jobs.requeue(taken) == 3
    assert jobs.requeue(taken) == 0  # only what is still leased goes back
    alone = [jobs.take_ready(max_rows=10, lease_seconds=30, holder="t2") for _ in range(4)]
    assert [[ready.job_id for ready in batch] for batch in alone] == [[ids[0]], [ids[1]], [ids[2]], []]
    jobs.release(alone[2], "t2")
    assert jobs.held("t2") == []


def test_a_job_of_several_chunks_cannot_be_small(jobs: JobStore, new_job: NewJob) -> None:
    with pytest.raises(ValueError, match="one chunk, not 3"):
        jobs.create(new_job, RECORDS, small=True)


@pytest.mark.parametrize("chunk", [3, 99, -1, 0.0])
def test_a_chunk_the_job_does_not_have_leaves_the_job_untouched(jobs: JobStore, new_job: NewJob, chunk) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    before = jobs.client.hgetall(keys.job(job_id))
    assert jobs.start_chunk(job_id, chunk, max_deliveries=3) == (StartOutcome.NO_SUCH_CHUNK, None)
    assert jobs.client.hgetall(keys.job(job_id)) == before
    assert not jobs.client.exists(keys.attempts(job_id))
    assert jobs.start_chunk(job_id, 2, max_deliveries=3)[0] == StartOutcome.RUN
