import json
import math
import time
from dataclasses import replace
from datetime import datetime

import redis

from jobs import JobStore, NewJob, keys
from jobs.stats import JOB_SECONDS_BUCKETS, JobEnd, RowCount, RowsDone, Stats
from jobs.store import Finished, FinishOutcome, StartOutcome

RECORDS = [{"x12": str(i)} for i in range(5)]


def results(rows: int, failed: int = 0) -> bytes:
    return json.dumps([{"error": {}} for _ in range(failed)] + [{"phat": 0.5} for _ in range(rows - failed)]).encode()


def le(histogram, bound: float) -> int:
    return dict(histogram.buckets)[bound]


def test_rows_add_up_per_model(redis_db: redis.Redis) -> None:
    stats = Stats(redis_db)
    assert stats.read().rows == {}
    stats.record([RowsDone("glm26", 3, 1), RowsDone("churn.v2", 5, 0)])
    stats.record([RowsDone("glm26", 4, 2)])
    assert stats.read().rows == {"glm26": RowCount(7, 3), "churn.v2": RowCount(5, 0)}


def test_job_times_make_cumulative_buckets_with_a_sum(redis_db: redis.Redis) -> None:
    stats = Stats(redis_db)
    ends = [JobEnd("glm26", "succeeded", s) for s in (0.01, 0.025, 0.03, 7.0, 5_000.0)]
    stats.record(ends=[*ends, JobEnd("glm26", "failed", 601.0), JobEnd("glm26", "failed", -0.002)])
    read = stats.read().job_seconds
    done, failed = read["glm26", "succeeded"], read["glm26", "failed"]
    assert [bound for bound, _ in done.buckets] == list(JOB_SECONDS_BUCKETS)
    assert (le(done, 0.025), le(done, 0.05), le(done, 5.0), le(done, 10.0), le(done, 600.0)) == (2, 3, 3, 4, 4)
    assert done.count == le(done, math.inf) == 5  # 5,000 s is only in +Inf
    assert math.isclose(done.total, 5_007.065)
    assert (le(failed, 0.025), le(failed, 600.0), failed.count) == (1, 1, 2)  # a clock skew counts as 0 s


def test_counts_under_a_bound_no_longer_used_land_in_the_next_one(redis_db: redis.Redis) -> None:
    redis_db.hset(keys.STATS_JOB_SECONDS, mapping={"glm26:succeeded:0.2": 3, "glm26:succeeded:sum": 0.5})
    histogram = Stats(redis_db).read().job_seconds["glm26", "succeeded"]
    assert (le(histogram, 0.1), le(histogram, 0.25), histogram.count) == (0, 3, 3)


def test_a_chunk_is_counted_once_with_its_failed_rows(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    assert jobs.finish_chunk(job_id, 0, 2, results(2, failed=1), failed=1) == FinishOutcome.COUNTED
    assert jobs.finish_chunk(job_id, 0, 2, results(2, failed=1), failed=1) == FinishOutcome.DUPLICATE
    assert jobs.stats.read().rows == {"glm26": RowCount(scored=1, failed=1)}
    assert jobs.stats.read().job_seconds == {}  # not ended yet


def test_a_job_that_succeeds_records_its_time_once(jobs: JobStore, new_job: NewJob) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    time.sleep(0.03)  # so the job takes more than the first bucket, whatever the machine's speed
    for chunk, rows in ((0, 2), (1, 2), (2, 1)):
        jobs.finish_chunk(job_id, chunk, rows, results(rows))
    assert jobs.finish_chunk(job_id, 2, 1, results(1)) == FinishOutcome.GONE  # a late redelivery
    assert not jobs.fail(job_id, "too late")
    stats = jobs.stats.read()
    assert stats.rows == {"glm26": RowCount(5, 0)}
    assert list(stats.job_seconds) == [("glm26", "succeeded")]
    histogram = stats.job_seconds["glm26", "succeeded"]
    job = jobs.get(job_id)
    assert histogram.count == 1 and le(histogram, 0.025) == 0
    assert job.finished_at is not None and histogram.total == _seconds(job.submitted_at, job.finished_at)


def test_a_failed_job_records_its_time_once_whoever_fails_it(jobs: JobStore, new_job: NewJob) -> None:
    cancelled, _ = jobs.create(new_job, RECORDS)
    assert jobs.fail(cancelled, "cancelled by the client", code="job_cancelled")
    assert not jobs.fail(cancelled, "cancelled again")
    doomed, _ = jobs.create(replace(new_job, model_name="churn"), RECORDS)
    for _ in range(2):
        jobs.start_chunk(doomed, 0, max_deliveries=2)
    assert jobs.start_chunk(doomed, 0, max_deliveries=2)[0] == StartOutcome.GAVE_UP
    assert jobs.start_chunk(doomed, 1, max_deliveries=2)[0] == StartOutcome.SKIP
    counts = {labels: histogram.count for labels, histogram in jobs.stats.read().job_seconds.items()}
    assert counts == {("glm26", "failed"): 1, ("churn", "failed"): 1}


def _seconds(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def test_a_micro_batch_counts_each_job_once(jobs: JobStore, new_job: NewJob) -> None:
    small = replace(new_job, rows=2, chunk_rows=2)
    ids = [jobs.create(small, RECORDS[:2], small=True)[0] for _ in range(2)]
    taken = jobs.take_ready(max_rows=10, lease_seconds=30, holder="t1")
    jobs.start_chunks([(ready.job_id, 0) for ready in taken], max_deliveries=3)
    finished = [Finished(ids[0], 0, 2, results(2, failed=1), failed=1), Finished(ids[1], 0, 2, results(2))]
    jobs.finish_batch(finished, taken, "t1")
    jobs.finish_batch(finished, [], "t1")  # the batch recorded again, as after a lost acknowledgement
    stats = jobs.stats.read()
    assert stats.rows == {"glm26": RowCount(scored=3, failed=1)}
    assert {labels: h.count for labels, h in stats.job_seconds.items()} == {("glm26", "succeeded"): 2}
