"""The watchdog: no accepted job may stay queued or running for ever.

Celery beat runs `sweep` every WATCHDOG_INTERVAL_SECONDS. For every live job:
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
from settings import Settings

log = logging.getLogger(__name__)


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


@contextlib.contextmanager
def _unless_full(what: str) -> Iterator[None]:
    try:
        yield
    except redis.OutOfMemoryError:
        log.warning("redis is full: could not %s; the next sweep tries again", what)


class Watchdog(threading.Thread):
    """Sweeps every interval, when it wins the lock that keeps scaled-out workers from all sweeping."""

    LOCK = keys.WATCHDOG_LOCK

    def __init__(self, app: Celery, jobs: JobStore, settings: Settings) -> None:
        super().__init__(name="glmq-watchdog", daemon=True)
        self.app = app
        self.jobs = jobs
        self.webhooks = webhooks.Webhooks(jobs.client, settings.result_ttl_seconds)
        self.interval = settings.watchdog_interval_seconds
        self.stall_seconds = settings.task_time_limit + settings.stall_seconds
        self.identity = f"{socket.gethostname()}:{threading.get_native_id()}"
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                if self.jobs.take_lock(self.LOCK, self.identity, max(1, int(self.interval))):
                    counts = sweep(self.jobs, self.app, self.stall_seconds)
                    counts["webhooks"] = webhooks.sweep(self.app, self.webhooks)
                    if any(counts.values()):
                        log.info("watchdog sweep: %s", counts)
            except (redis.RedisError, OperationalError) as exc:
                # kombu reports a broker it cannot reach (queue_depth, send_task) as its OperationalError:
                # seen in a Sentinel failover ("No master found"), which ended this thread before.
                log.warning("watchdog cannot reach redis: %s", type(exc).__name__)

    def stop(self) -> None:
        """Ask the thread to finish after its current sweep."""
        self._stopped.set()
