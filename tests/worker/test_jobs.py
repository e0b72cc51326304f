import json
from dataclasses import replace

import pytest

from worker.jobs import JobStore, NewJob, result_key

RECORDS = [{"x12": str(i)} for i in range(5)]


def results(chunk: int, rows: int) -> bytes:
    return json.dumps([{"row": chunk * 2 + i} for i in range(rows)]).encode()


def test_create_writes_the_record_and_payload_chunks(jobs: JobStore, new_job: NewJob) -> None:
    job_id, chunks = jobs.create(new_job, RECORDS)
    assert chunks == [0, 1, 2]
    record = jobs.get(job_id)
    assert (record["status"], record["rows"], record["chunks"], record["rows_done"]) == ("queued", "5", "3", "0")
    assert [jobs.payload(job_id, k) for k in chunks] == [RECORDS[0:2], RECORDS[2:4], RECORDS[4:5]]


def test_a_chunk_finished_twice_counts_once(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    assert jobs.start_chunk(job_id, 0, max_deliveries=3) == 0
    assert jobs.get(job_id)["status"] == "running"
    assert jobs.finish_chunk(job_id, 0, 2, results(0, 2)) == 0
    assert jobs.finish_chunk(job_id, 0, 2, results(0, 2)) == 1  # a redelivered duplicate
    assert jobs.get(job_id)["rows_done"] == "2"
    assert jobs.finish_chunk(job_id, 2, 1, results(2, 1)) == 0
    assert jobs.finish_chunk(job_id, 1, 2, results(1, 2)) == 2
    record = jobs.get(job_id)
    assert (record["status"], record["rows_done"]) == ("succeeded", "5")
    assert json.loads(jobs.results(job_id, 5, 2)) == [{"row": i} for i in range(5)]
    assert jobs.payload(job_id, 0) is None  # payload dropped once the job is done


def test_a_page_of_results_reads_only_the_rows_asked_for(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    for chunk, rows in ((0, 2), (1, 2), (2, 1)):
        jobs.finish_chunk(job_id, chunk, rows, results(chunk, rows))
    every = [{"row": i} for i in range(5)]
    for start in range(7):
        for stop in range(start, 8):
            page = jobs.results(job_id, 5, 2, range(start, stop))
            assert json.loads(page) == every[start:stop], (start, stop)
    jobs.client.delete(result_key(job_id, 0))
    assert jobs.results(job_id, 5, 2, range(2, 5)) is not None  # the page does not need chunk 0
    assert jobs.results(job_id, 5, 2, range(1, 3)) is None


def test_a_finished_chunk_is_not_started_again(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    jobs.finish_chunk(job_id, 0, 2, results(0, 2))
    assert jobs.start_chunk(job_id, 0, max_deliveries=3) == 1


def test_deliveries_beyond_the_budget_fail_the_job(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    assert [jobs.start_chunk(job_id, 1, max_deliveries=2) for _ in range(3)] == [0, 0, 2]
    record = jobs.get(job_id)
    assert record["status"] == "failed"
    assert record["error"] == "chunk 1 failed 2 times; giving up"
    assert jobs.start_chunk(job_id, 0, max_deliveries=2) == 1
    assert jobs.finish_chunk(job_id, 0, 2, results(0, 2)) == -1  # a failed job takes no more results


def test_fail_keeps_the_first_outcome(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(replace(new_job, rows=2), RECORDS[:2])
    jobs.finish_chunk(job_id, 0, 2, results(0, 2))
    assert jobs.fail(job_id, "too late") is False
    assert jobs.get(job_id)["status"] == "succeeded"


def test_every_key_expires(jobs: JobStore, new_job: NewJob, redis_db) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    jobs.start_chunk(job_id, 0, max_deliveries=3)
    jobs.finish_chunk(job_id, 0, 2, results(0, 2))
    keys = redis_db.keys(f"*{job_id}*")
    assert len(keys) == 7  # job, 3 payloads, attempts, done set, and one result
    assert all(0 < redis_db.ttl(key) <= 600 for key in keys)


def test_rows_must_match_the_records(jobs: JobStore, new_job: NewJob) -> None:
    with pytest.raises(ValueError, match="5 rows but 2 records"):
        jobs.create(new_job, RECORDS[:2])
