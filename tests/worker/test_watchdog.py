import json
import logging
import time
from dataclasses import replace

from jobs import JobStore, NewJob, keys
from jobs.broker import DRAIN, QUEUE, make_celery
from jobs.leases import Leases, chunk_lease
from settings import Secret, Settings
from stack.processes import free_port
from worker.watchdog import Watchdog, redrive_lapsed, redrive_unleased, sweep

RECORDS = [{"x12": str(i)} for i in range(5)]


def queued_chunks(redis_db) -> list[list]:
    return sorted(json.loads(raw)["headers"]["argsrepr"] for raw in redis_db.lrange(QUEUE, 0, -1))


def test_a_stalled_job_has_its_unfinished_chunks_enqueued_again(jobs: JobStore, new_job: NewJob, celery_app,
                                                                 redis_db) -> None:  # fmt: skip
    job_id, _ = jobs.create(new_job, RECORDS)
    jobs.finish_chunk(job_id, 1, 2, b"[]")
    counts = sweep(jobs, celery_app, stall_seconds=5, now=time.time() + 10)
    assert counts == {"failed": 0, "redriven": 1, "forgotten": 0, "requeued": 0}
    assert queued_chunks(redis_db) == [f"['{job_id}', 0]", f"['{job_id}', 2]"]
    # Re-driving records progress: the next sweep leaves the job alone.
    assert sweep(jobs, celery_app, stall_seconds=5)["redriven"] == 0


def test_a_job_with_recent_progress_or_a_backlog_is_left_alone(jobs: JobStore, new_job: NewJob, celery_app,
                                                               redis_db) -> None:  # fmt: skip
    jobs.create(new_job, RECORDS)
    assert sweep(jobs, celery_app, stall_seconds=5)["redriven"] == 0
    redis_db.lpush(QUEUE, "{}")  # a backlog may still hold the job's chunks
    assert sweep(jobs, celery_app, stall_seconds=5, now=time.time() + 10)["redriven"] == 0


def test_a_job_past_its_deadline_is_failed_with_a_reason(jobs: JobStore, new_job: NewJob, celery_app) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    jobs.finish_chunk(job_id, 0, 2, b"[]")
    counts = sweep(jobs, celery_app, stall_seconds=5, now=time.time() + 61)
    assert counts["failed"] == 1
    job = jobs.get(job_id)
    assert (job.status, job.error) == ("failed", "deadline exceeded: 2 of 5 rows scored")


def test_finished_and_vanished_jobs_are_forgotten(jobs: JobStore, new_job: NewJob, celery_app, redis_db) -> None:
    done, _ = jobs.create(replace(new_job, rows=2), RECORDS[:2])
    jobs.finish_chunk(done, 0, 2, b"[]")
    # As if the worker died between the finishing script and the separate removal from the index.
    redis_db.zadd(keys.DEADLINES, {done: time.time() + 60})
    gone, _ = jobs.create(new_job, RECORDS)
    redis_db.delete(keys.job(gone))
    assert sweep(jobs, celery_app, stall_seconds=5, now=time.time() + 10)["forgotten"] == 2
    assert jobs.live() == []


def test_small_jobs_of_a_dead_worker_go_back_in_line_alone_with_a_drain_message(
    jobs: JobStore, new_job: NewJob, celery_app, redis_db
) -> None:
    small = replace(new_job, rows=1)
    first, _ = jobs.create(small, RECORDS[:1], small=True)
    second, _ = jobs.create(small, RECORDS[:1], small=True)
    assert [ready.job_id for ready in jobs.take_ready(max_rows=10, lease_seconds=30, holder="t1")] == [first, second]
    redis_db.delete(QUEUE)
    # The worker holding them dies; once the lease lapses, they are put back, each to run alone.
    counts = sweep(jobs, celery_app, stall_seconds=500, now=time.time() + 31)
    assert counts["requeued"] == 2
    assert [json.loads(raw)["headers"]["task"] for raw in redis_db.lrange(QUEUE, 0, -1)] == [DRAIN]
    batches = [[ready.job_id for ready in jobs.take_ready(max_rows=10, lease_seconds=30, holder="t1")] for _ in "ab"]
    assert sorted(batches) == sorted([[first], [second]])  # one job per batch


def test_the_watchdog_outlives_a_broker_it_cannot_reach(jobs: JobStore, caplog) -> None:
    # As in a Sentinel failover: the job store answers, the broker does not, and kombu says so with
    # its own OperationalError, not a Redis error. The thread must log it and sweep again.
    settings = Settings(redis_url=Secret(f"redis://127.0.0.1:{free_port()}/0"), watchdog_interval_seconds=1)
    app = make_celery(settings)
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "max_retries": 0}
    watchdog = Watchdog(app, jobs, settings)
    caplog.set_level(logging.WARNING, logger="worker.watchdog")
    watchdog.start()
    deadline = time.monotonic() + 60
    try:
        while sum("cannot reach redis: OperationalError" in r.message for r in caplog.records) < 2:
            assert watchdog.is_alive() and time.monotonic() < deadline, [r.message for r in caplog.records]
            time.sleep(0.1)
    finally:
        watchdog.stop()
        watchdog.join(30)


def test_a_lapsed_chunk_lease_is_re_driven_once_and_a_renewed_one_never(jobs: JobStore, new_job: NewJob, celery_app,
                                                                        redis_db) -> None:  # fmt: skip
    job_id, _ = jobs.create(new_job, RECORDS)
    leases = Leases(redis_db, lease_seconds=5)
    leases.hold(chunk_lease(job_id, 0))
    leases.hold(chunk_lease(job_id, 1))
    later = time.time() + 6
    leases.renew("host:1", [chunk_lease(job_id, 1)], ())  # chunk 1's process is alive and renews
    redis_db.zadd(keys.LEASES, {chunk_lease(job_id, 1): later + 5})
    assert redrive_lapsed(jobs, leases, celery_app, now=later) == {"requeued": 0, "redriven": 1}
    assert queued_chunks(redis_db) == [f"['{job_id}', 0]"]
    # Taken back, so no other watchdog sends it again.
    assert redrive_lapsed(jobs, leases, celery_app, now=later) == {"requeued": 0, "redriven": 0}
    # A lease taken back is not revived by its old holder's renewal.
    leases.renew("host:1", [chunk_lease(job_id, 0)], ())
    assert redis_db.zscore(keys.LEASES, chunk_lease(job_id, 0)) is None


def test_after_a_redis_restart_unfinished_chunks_without_a_lease_are_re_driven(
    jobs: JobStore, new_job: NewJob, celery_app, redis_db
) -> None:
    job_id, _ = jobs.create(new_job, RECORDS)
    jobs.create(replace(new_job, rows=1), RECORDS[:1], small=True)
    jobs.finish_chunk(job_id, 0, 2, b"[]")
    leases = Leases(redis_db, lease_seconds=5)
    leases.hold(chunk_lease(job_id, 1))  # running, its process alive
    redis_db.delete(QUEUE)
    assert redrive_unleased(jobs, leases, celery_app, small_job_rows=64) == 1
    assert queued_chunks(redis_db) == [f"['{job_id}', 2]"]  # the small job is left to its own lease


def test_a_worker_process_counts_as_alive_while_its_heartbeat_is_renewed(redis_db) -> None:
    leases = Leases(redis_db, lease_seconds=5)
    leases.renew("host:1", (), ())
    leases.renew("host:2", (), ())
    assert leases.workers_alive() == 2
    assert leases.workers_alive(now=time.time() + 6) == 0
    leases.leave("host:1")
    assert leases.workers_alive() == 1
