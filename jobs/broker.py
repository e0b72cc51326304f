"""The broker contract: the Celery app, its queue and task names, and how deep the queue is."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery

from settings import Settings

QUEUE = "predictions"
SCORE_CHUNK = "worker.tasks.score_chunk"


def make_celery(settings: Settings, include: Sequence[str] = ()) -> Celery:
    """Return a JSON-only Celery app that acknowledges late and survives lost workers.

    The API builds it only to send; the worker names its task modules in `include`.
    """
    app = Celery("glmq", broker=settings.redis_url.reveal(), include=list(include))
    app.conf.update(
        broker_transport="jobs.transport:Transport",
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
        # Unacknowledged messages return to the queue after this long; it must exceed the
        # hard time limit, or a slow but healthy chunk would run twice.
        broker_transport_options={"visibility_timeout": settings.visibility_timeout},
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
