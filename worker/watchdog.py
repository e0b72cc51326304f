"""The watchdog: no accepted job may stay queued or running for ever.

Every second, without a lock (each lapsed lease is taken back by one caller only), it re-drives
the work whose lease lapsed (jobs.leases): a chunk is enqueued again, the small jobs of a
micro-batch go back in line with a drain message. After Redis restarts, once the live holders have
had time to renew, one watchdog also re-drives every unfinished chunk of a live job that holds no
lease: whatever ran or was in a worker's hands when Redis died.

Every WATCHDOG_INTERVAL_SECONDS, the watchdog that wins the lock runs `sweep`. For every live job:
- past its deadline, it is failed with a reason;
- stalled while the queue and the line of small jobs are empty, its unfinished chunks are
  enqueued again.
  Stalled means no chunk started or finished for TASK_TIME_LIMIT + STALL_SECONDS:
  by then any chunk still marked running has died with its worker or its message
  with Redis, since a live one would have finished or been killed at the hard
  limit. Running a chunk twice is harmless, since results are idempotent.
Webhook deliveries that fell due are sent: retries, attempts lost with their worker, and the
first attempt of a job whose ender died before sending it (jobs.webhooks).
Small jobs whose worker died while holding them are put back in line when their lease lapses,
and a drain message is sent whenever small jobs wait in line with none on its way.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from jobs import JobStore, keys, webhooks
from jobs.broker import DRAIN, SCORE_CHUNK, queue_depth
from jobs.leases import Leases, chunk_lease, parse_chunk_lease
from settings import Settings

log = logging.getLogger(__name__)
# How often lapsed leases are looked for: a lapsed lease waits this long at most.
TICK_SECONDS = 1.0


def redrive_lapsed(jobs: JobStore, leases: Leases, app: Celery, now: float | None = None) -> dict[str, int]:
    """Enqueue again the chunks, and put back in line the small jobs, whose lease lapsed; return how many."""
    requeued = jobs.requeue_lapsed(now)
    if requeued:
        app.send_task(DRAIN)
    redriven = 0
    for member in leases.lapsed(now):
        if not leases.take_back(member):
            continue  # another watchdog took it
        job_id, chunk = parse_chunk_lease(member)
        try:
            app.send_task(SCORE_CHUNK, args=[job_id, chunk])
        except Exception:
            leases.client.zadd(keys.LEASES, {member: 0})  # lapsed still: the next tick tries again
            raise
        log.warning("re-drove chunk %d of job %s: its lease lapsed", chunk, job_id)
        redriven += 1
    return {"requeued": requeued, "redriven": redriven}


def redrive_unleased(jobs: JobStore, leases: Leases, app: Celery, small_job_rows: int) -> int:
    """Enqueue every unfinished chunk of a live job that holds no lease; return how many were sent.

    Run once after Redis restarts: a chunk a worker was starting or finishing then may have lost its
    message. A chunk still queued runs once; its second message finds it done and is skipped. Small
    jobs are left to their own leases (`redrive_lapsed`).
    """
    sent = 0
    for job_id, _ in jobs.live():
        job = jobs.get(job_id)
        if job is None or job.status.terminal or (job.chunks == 1 and job.rows <= small_job_rows):
            continue
        pending = jobs.pending_chunks(job_id, job.chunks)
        held = leases.held([chunk_lease(job_id, chunk) for chunk in pending])
        unleased = [chunk for chunk in pending if chunk_lease(job_id, chunk) not in held]
        if unleased:
            jobs.touch(job_id)
            for chunk in unleased:
                app.send_task(SCORE_CHUNK, args=[job_id, chunk])
            sent += len(unleased)
    return sent


def sweep(jobs: JobStore, app: Celery, stall_seconds: float, now: float | None = None) -> dict[str, int]:
    """Fail overdue jobs and re-drive those without progress for `stall_seconds`; return what was done."""
    now = time.time() if now is None else now
    counts = {"failed": 0, "redriven": 0, "forgotten": 0, "requeued": 0}
    # A full Redis refuses what grows memory: the steps that need some wait for the next sweep, while
    # overdue jobs are still failed (which frees memory).
    with _unless_full("put lapsed small jobs back in line"):
        counts["requeued"] = jobs.requeue_lapsed(now)
    waiting, kicked = jobs.ready_backlog()
    if waiting and not kicked:  # a drain message was lost, or its worker died: send another
        with _unless_full("send a drain message"):
            app.send_task(DRAIN)
    backlog = queue_depth(app) + waiting
    for job_id, deadline in jobs.live():
        job = jobs.get(job_id)
        if job is None or job.status.terminal:
            jobs.forget_deadline(job_id)
            counts["forgotten"] += 1
        elif now >= deadline:
            reason = f"deadline exceeded: {job.rows_done} of {job.rows} rows scored"
            counts["failed"] += jobs.fail(job_id, reason)
        elif backlog == 0 and now - job.heartbeat >= stall_seconds:
            with _unless_full(f"re-drive job {job_id}"):
                pending = jobs.pending_chunks(job_id, job.chunks)
                jobs.touch(job_id)
                for chunk in pending:
                    app.send_task(SCORE_CHUNK, args=[job_id, chunk])
                log.warning("re-drove %d chunk(s) of stalled job %s", len(pending), job_id)
                counts["redriven"] += 1
    return counts


def _run_id(client: redis.Redis) -> str:
    """Return what changes when Redis restarts: its run id, or the run ids of every node of a cluster."""
    info = client.info("server")
    if "run_id" in info:
        return str(info["run_id"])
    return ",".join(sorted(str(node.get("run_id")) for node in info.values() if isinstance(node, dict)))


@contextlib.contextmanager
def _unless_full(what: str) -> Iterator[None]:
    try:
        yield
    except redis.OutOfMemoryError:
        log.warning("redis is full: could not %s; the next sweep tries again", what)


class Watchdog(threading.Thread):
    """Re-drives lapsed work every second; sweeps every interval when it wins the lock that keeps
    scaled-out workers from all sweeping."""

    LOCK = keys.WATCHDOG_LOCK

    def __init__(self, app: Celery, jobs: JobStore, settings: Settings) -> None:
        super().__init__(name="glmq-watchdog", daemon=True)
        self.app = app
        self.jobs = jobs
        self.webhooks = webhooks.Webhooks(jobs.client, settings.result_ttl_seconds)
        self.leases = Leases(jobs.client, settings.lease_seconds)
        self.interval = settings.watchdog_interval_seconds
        self.stall_seconds = settings.task_time_limit + settings.stall_seconds
        self.small_job_rows = settings.small_job_rows
        self.identity = f"{socket.gethostname()}:{threading.get_native_id()}"
        # After Redis comes back, live holders renew within one renewal; give them two before re-driving.
        self.settle_seconds = 2 * self.leases.renew_seconds
        self._stopped = threading.Event()
        self._run_id: str | None = None
        self._reachable_since: float | None = None
        self._recover_at: float | None = None
        self._next_sweep = time.monotonic() + self.interval

    def run(self) -> None:
        while not self._stopped.wait(TICK_SECONDS):
            try:
                self.tick()
            except (redis.RedisError, OperationalError) as exc:
                # kombu reports a broker it cannot reach (queue_depth, send_task) as its OperationalError:
                # seen in a Sentinel failover ("No master found"), which ended this thread before.
                if self._reachable_since is not None:
                    log.warning("watchdog cannot reach redis: %s (the job store or the broker)", type(exc).__name__)
                self._reachable_since = None
            except Exception:  # a defect must not end the thread that keeps jobs from hanging
                log.exception("watchdog tick failed")

    def tick(self) -> None:
        """Notice a Redis restart, re-drive lapsed work, and sweep when the interval is up."""
        now = time.monotonic()
        run_id = _run_id(self.jobs.client)
        if self._reachable_since is None or run_id != self._run_id:
            self._reachable_since = now
        if self._run_id is not None and run_id != self._run_id:
            log.warning("redis restarted: unfinished work is re-driven in %.0f s", self.settle_seconds)
            self._recover_at = now + self.settle_seconds
        self._run_id = run_id
        if now - self._reachable_since < self.settle_seconds:
            return
        with _unless_full("re-drive lapsed work"):
            counts = redrive_lapsed(self.jobs, self.leases, self.app)
            if any(counts.values()):
                log.info("watchdog: lapsed leases %s", counts)
        if self._recover_at is not None and now >= self._recover_at:
            self._recover_at = None
            if self.jobs.take_lock(keys.recovered(run_id), self.identity, 3600):
                with _unless_full("re-drive the work a Redis restart cut off"):
                    sent = redrive_unleased(self.jobs, self.leases, self.app, self.small_job_rows)
                    log.warning("after the redis restart, re-drove %d unleased chunk(s)", sent)
        if now >= self._next_sweep:
            self._next_sweep = now + self.interval
            if self.jobs.take_lock(self.LOCK, self.identity, max(1, int(self.interval))):
                self.leases.forget_dead_workers()
                counts = sweep(self.jobs, self.app, self.stall_seconds)
                counts["webhooks"] = webhooks.sweep(self.app, self.webhooks)
                if any(counts.values()):
                    log.info("watchdog sweep: %s", counts)

    def stop(self) -> None:
        """Ask the thread to finish after its current tick."""
        self._stopped.set()
