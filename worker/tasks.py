"""Celery tasks: thin shells that deserialize ids, call plain functions, record outcomes."""

from __future__ import annotations

import functools
import logging
import os
import socket
from dataclasses import dataclass

import msgspec
import redis
from celery import Task, current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_failure, worker_process_init, worker_process_shutdown, worker_ready, worker_shutdown
from opentelemetry import trace

from jobs import JobStore, webhooks
from jobs.broker import DRAIN, SCORE_CHUNK, chunk_args
from jobs.connection import connect
from jobs.deadletter import dead_letter
from jobs.leases import Leases, chunk_lease
from jobs.store import Delivery, StartOutcome
from model_store import ModelStore, ModelStoreError
from settings import Settings
from tracing import flush_tracing, init_tracing
from training import scoring
from worker.batching import Batcher
from worker.heartbeat import Heartbeat
from worker.models import ModelCache
from worker.watchdog import Watchdog

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


@dataclass(frozen=True)
class ProcessState:
    """What one worker process holds: its settings, Redis connection, jobs, models and heartbeat."""

    settings: Settings
    jobs: JobStore
    models: ModelCache
    batcher: Batcher
    heartbeat: Heartbeat


@functools.cache
def process_state() -> ProcessState:
    """Return this process's state, created on first use after the fork."""
    settings: Settings = current_app.conf.glmq_settings
    jobs = job_store(settings)
    models = ModelCache(ModelStore(settings.model_store_dir))
    heartbeat = Heartbeat(Leases(jobs.client, settings.lease_seconds), f"{socket.gethostname()}:{os.getpid()}")
    batcher = Batcher(
        jobs, models, settings.batch_max_rows, lease_seconds=settings.lease_seconds,
        max_deliveries=settings.max_chunk_retries + 1, soft_limit=settings.task_soft_time_limit, heartbeat=heartbeat,
    )  # fmt: skip
    return ProcessState(settings, jobs, models, batcher, heartbeat)


def job_store(settings: Settings) -> JobStore:
    """Return a job store on a new Redis connection."""
    client = connect(settings, socket_timeout=10, health_check_interval=10)
    ended = webhooks.on_end(current_app, webhooks.Webhooks(client, settings.result_ttl_seconds))
    return JobStore(client, settings.result_ttl_seconds, settings.job_deadline_seconds, on_end=ended)


@worker_process_init.connect
def load_model_once(**_: object) -> None:
    """Load the serving model when a worker process starts, not when the first job arrives."""
    state = process_state()
    try:
        state.models.preload_current(state.settings.model_name)
    except ModelStoreError:
        log.exception("could not preload model %s", state.settings.model_name)


@worker_process_init.connect
def start_heartbeat(**_: object) -> None:
    """Renew this process's heartbeat and leases from now on, so that its death is seen in seconds."""
    process_state().heartbeat.start()


@worker_process_shutdown.connect
def stop_heartbeat(**_: object) -> None:
    """Leave the set of live workers when this process stops cleanly."""
    process_state().heartbeat.stop()


@worker_process_init.connect
def start_tracing(**_: object) -> None:
    """Trace this process when an OTLP endpoint is set; after the fork, so the exporter's thread is its own."""
    init_tracing("glmq-worker", current_app.conf.glmq_settings)


@worker_process_shutdown.connect
def flush_spans(**_: object) -> None:
    """Send this process's last spans: a pool process exits without running atexit handlers."""
    flush_tracing()


@shared_task(name=SCORE_CHUNK)
def score_chunk(*args: object) -> None:
    """Score one chunk of a job and record its results; safe to run more than once.

    The arguments are `job_id, chunk`; a message with anything else is dropped, and the job left alone.
    """
    state = process_state()
    jobs = state.jobs
    parsed = chunk_args(args)
    if parsed is None:
        dead_letter(jobs.client, repr(args)[:1000], "bad_arguments", "score_chunk takes a job id and a chunk number")
        return
    job_id, chunk = parsed
    try:
        _score_chunk(state, job_id, chunk)
    except redis.OutOfMemoryError:
        # Redis is full. Its scripts refuse a first write whole, so nothing of this delivery was recorded,
        # and the job keeps its place among the live ones: the watchdog enqueues the chunk again once the
        # job has stalled, and fails the job at its deadline (which Redis allows however full it is).
        log.warning("redis is full: chunk %d of job %s is left to the watchdog", chunk, job_id)


def _score_chunk(state: ProcessState, job_id: str, chunk: int) -> None:
    jobs = state.jobs
    outcome, delivery = jobs.start_chunk(job_id, chunk, state.settings.max_chunk_retries + 1)
    if outcome == StartOutcome.NO_SUCH_CHUNK:
        dead_letter(jobs.client, f"[{job_id!r}, {chunk}]", "bad_arguments", f"job {job_id} has no chunk {chunk}")
        return
    if outcome == StartOutcome.SKIP:
        log.info("skipped chunk %d (job %s): it is done, or its job ended", chunk, job_id)
    if outcome != StartOutcome.RUN or delivery is None:
        return
    if delivery.records is None:
        jobs.fail(job_id, f"the payload of chunk {chunk} expired before it ran")
        return
    with state.heartbeat.chunk(chunk_lease(job_id, chunk)):
        try:
            _run_chunk(state, delivery, chunk)
        except redis.OutOfMemoryError:
            # Redis is full, and refused the results whole. The lease ends here, as for work that ended:
            # re-driving at once would only take more memory. The watchdog re-drives the chunk once the job
            # has stalled, and fails the job at its deadline (which Redis allows however full it is).
            log.warning("redis is full: chunk %d of job %s is left to the watchdog", chunk, job_id)


def _run_chunk(state: ProcessState, delivery: Delivery, chunk: int) -> None:
    jobs, job, records = state.jobs, delivery.job, delivery.records or []
    job_id = job.id
    try:
        attributes = {"glmq.job_id": job_id, "glmq.chunk": chunk, "glmq.rows": len(records)}
        attributes |= {"glmq.model": job.model_name, "glmq.model_version": job.model_version}
        with tracer.start_as_current_span("score chunk", attributes=attributes):
            model = state.models.get(job.model_name, job.model_version)
            results = scoring.score_records(
                model.pipeline, records, job.threshold, chunk * job.chunk_rows, job.strict, job.fields, job.explain
            )
    except ModelStoreError as exc:
        jobs.fail(job_id, f"model {job.model_name} v{job.model_version} cannot be loaded: {exc}")
        return
    except SoftTimeLimitExceeded:
        jobs.fail(job_id, f"chunk {chunk} exceeded the time limit of {state.settings.task_soft_time_limit} s")
        return
    except Exception as exc:  # a defect, not bad input: bad values are per-row errors
        log.exception("chunk %d of job %s could not be scored", chunk, job_id)
        jobs.fail(job_id, f"chunk {chunk} could not be scored: {type(exc).__name__}")
        return
    jobs.finish_chunk(job_id, chunk, len(records), msgspec.json.encode(results), scoring.failed_rows(results))
    log.info("scored chunk %d of job %s: %d rows", chunk, job_id, len(records))


@shared_task(name=DRAIN, bind=True)
def drain(task: Task) -> None:
    """Score the small jobs in line, in micro-batches, until none is left; safe to run more than once."""
    state = process_state()
    budget = state.settings.task_soft_time_limit / 4
    try:
        state.batcher.drain(task.request.id, budget, more=lambda: current_app.send_task(DRAIN))
    except redis.OutOfMemoryError:
        # Redis is full. What this drain took stays leased: the watchdog puts it back in line when the lease
        # lapses and sends a drain message, or fails each job at its deadline.
        log.warning("redis is full: the small jobs in line are left to the watchdog")


@task_failure.connect
def fail_job_on_hard_time_limit(
    sender: object = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: tuple = (),
    **_: object,
) -> None:
    """After a hard time limit the pool replaces the process and acks the message: fail the job now.

    A micro-batch that hit it is put back one job per batch, unless it was one job already.
    """
    if not isinstance(exception, TimeLimitExceeded):
        return
    name = getattr(sender, "name", None)
    reason = f"chunk {{}} exceeded the hard time limit of {current_app.conf.task_time_limit} s"
    state = process_state()
    if name == SCORE_CHUNK and len(args) == 2:
        state.jobs.fail(str(args[0]), reason.format(args[1]))
    elif name == DRAIN and task_id:
        state.batcher.overran(state.jobs.held(task_id), task_id, reason.format(0))


@worker_ready.connect
def start_watchdog(sender: object = None, **_: object) -> None:
    """Run the watchdog in the worker's main process; a Redis lock lets one worker sweep at a time."""
    settings: Settings = current_app.conf.glmq_settings
    watchdog = Watchdog(current_app, job_store(settings), settings)
    current_app.conf.glmq_watchdog = watchdog
    watchdog.start()


@worker_shutdown.connect
def stop_watchdog(**_: object) -> None:
    """Stop the watchdog thread with the worker."""
    watchdog = current_app.conf.get("glmq_watchdog")
    if watchdog is not None:
        watchdog.stop()
