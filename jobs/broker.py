"""The broker contract: the Celery app, its queue and task names, and how deep the queue is."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from jobs import connection
from jobs.record import NewJob
from jobs.store import JobStore
from settings import Settings

QUEUE = "predictions"
SCORE_CHUNK = "worker.tasks.score_chunk"
# Scores the small jobs waiting in line (jobs.keys.READY), in micro-batches, until the line is empty.
DRAIN = "worker.tasks.drain"
# Webhook deliveries have a queue of their own (jobs.webhooks), so a slow receiver never holds up scoring
# messages behind it; every worker consumes both unless told otherwise.
WEBHOOK_QUEUE = "webhooks"
DELIVER_WEBHOOK = "worker.webhooks.deliver"
_JOB_ID = re.compile(r"[0-9a-f]{32}")  # JobStore.create's uuid4().hex


def chunk_args(args: Sequence[Any]) -> tuple[str, int] | None:
    """Return a score_chunk message's job id and chunk number, or None when they are not exactly those.

    A chunk number must be an int (not a bool, not 0.0); whether the job has that chunk is the store's to say.
    """
    if len(args) != 2:
        return None
    job_id, chunk = args
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id) or type(chunk) is not int or chunk < 0:
        return None
    return job_id, chunk


def on_rabbitmq(settings: Settings) -> bool:
    """Say whether the work queue is on RabbitMQ (an AMQP CELERY_BROKER_URL) rather than on Redis."""
    return settings.celery_broker_url.reveal().startswith(("amqp://", "amqps://", "pyamqp://"))


def make_celery(settings: Settings, include: Sequence[str] = ()) -> Celery:
    """Return a JSON-only Celery app that acknowledges late and survives lost workers.

    The API builds it only to send; the worker names its task modules in `include`. On RabbitMQ the
    queues (scoring and webhooks) are quorum queues (replicated, durable; a dead consumer's messages are
    delivered again at once).
    """
    app = Celery("glmq", broker=connection.broker_url(settings), include=list(include))
    if on_rabbitmq(settings):
        app.conf.update(
            task_queues=[
                Queue(name, Exchange(name), routing_key=name, queue_arguments={"x-queue-type": "quorum"})
                for name in (QUEUE, WEBHOOK_QUEUE)
            ],
            # A quorum queue refuses a global prefetch limit: Celery then sets it per consumer.
            worker_detect_quorum_queues=True,
            # A publish returns once the broker has the message.
            broker_transport_options={"confirm_publish": True},
        )
    else:
        app.conf.update(
            broker_transport=connection.broker_transport(settings),
            # Unacknowledged messages return to the queue after this long; it must exceed the
            # hard time limit, or a slow but healthy chunk would run twice.
            broker_transport_options={"visibility_timeout": settings.visibility_timeout}
            | connection.broker_options(settings),
        )
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A chunk that raised was failed by the task itself, or hit a Redis outage: leave it
        # unacknowledged, so it comes back. Deliveries are counted, so this cannot loop.
        task_acks_on_failure_or_timeout=False,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=settings.task_time_limit,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        broker_connection_timeout=2,
    )
    app.conf.glmq_settings = settings
    return app


def queue_depth(app: Celery) -> int:
    """Return how many messages wait in the work queue, asked of the broker itself."""
    with app.connection_for_read() as connection:
        try:
            _, messages, _ = connection.default_channel.queue_declare(queue=QUEUE, passive=True)
        except connection.channel_errors:  # not declared yet; on Redis, an empty queue does not exist
            return 0
    return int(messages)


def submit(app: Celery, store: JobStore, job: NewJob, records: Sequence[Any], small_job_rows: int) -> str:
    """Store a job and put it in line for the workers: a small one for a micro-batch, a big one by chunks.

    Return its id. A job that cannot be enqueued is failed, so that it never waits for nothing.
    """
    small = job.chunks == 1 and job.rows <= small_job_rows
    job_id, kick = store.create(job, records, small=small)
    try:
        if kick:
            app.send_task(DRAIN)
        for chunk in range(0 if small else job.chunks):
            app.send_task(SCORE_CHUNK, args=[job_id, chunk])
    except Exception:
        store.fail(job_id, "the job could not be enqueued")
        raise
    return job_id
