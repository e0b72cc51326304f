"""The event stream the job scripts write: progress per chunk counted, then exactly one final event."""

from __future__ import annotations

from jobs import JobStore, NewJob, keys
from jobs.events import read_events
from tests.jobs.test_store import RECORDS, results


def test_each_counted_chunk_adds_progress_and_the_last_one_succeeded(jobs: JobStore, new_job: NewJob, redis_db) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)  # 5 rows in chunks of 2
    for chunk, (start, stop) in enumerate([(0, 2), (2, 4), (4, 5)]):
        jobs.start_chunk(job_id, chunk, max_deliveries=3)
        jobs.finish_chunk(job_id, chunk, stop - start, results(start, stop))
    jobs.finish_chunk(job_id, 1, 2, results(2, 4))  # a redelivery is neither counted nor an event
    events = read_events(redis_db, job_id)
    assert [(e.type, e.rows_done, e.rows) for e in events] == [
        ("progress", 2, 5), ("progress", 4, 5), ("progress", 5, 5), ("succeeded", 0, 0),
    ]  # fmt: skip
    assert [e.final for e in events] == [False, False, False, True]
    assert read_events(redis_db, job_id, after=events[1].id) == events[2:]
    assert 0 < redis_db.ttl(keys.events(job_id)) <= 600


def test_a_failed_job_ends_its_stream_once(jobs: JobStore, new_job: NewJob, redis_db) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    jobs.finish_chunk(job_id, 0, 2, results(0, 2))
    assert jobs.fail(job_id, "cancelled by the client", code="job_cancelled")
    assert not jobs.fail(job_id, "again")
    assert jobs.finish_chunk(job_id, 1, 2, results(2, 4)) == -1
    assert [e.type for e in read_events(redis_db, job_id)] == ["progress", "failed"]


def test_a_job_that_gives_up_on_a_chunk_ends_its_stream(jobs: JobStore, new_job: NewJob, redis_db) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    for _ in range(3):
        jobs.start_chunk(job_id, 0, max_deliveries=2)
    assert [e.type for e in read_events(redis_db, job_id)] == ["failed"]
