"""Celery's consumer, with every message it cannot turn into a task dead-lettered, never fatal.

Celery logs and drops a message that names an unknown task, or whose body is not JSON, and a
body that is JSON but not `[args, kwargs, embed]` raises out of its handler, which ends the
worker. Here each is rejected (so it is not delivered again), counted and kept on the
dead-letter list (jobs.deadletter), and consumption goes on.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import redis
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.message import Message
from redis.cluster import RedisCluster

from jobs.connection import connect
from jobs.deadletter import dead_letter
from settings import Settings


class Consumer(CeleryConsumer):
    """Celery's consumer, which dead-letters what it cannot run."""

    def create_task_handler(self, *args: Any, **kwargs: Any) -> Any:
        handle = super().create_task_handler(*args, **kwargs)
        survivable = tuple(self.connection_errors) + tuple(self.channel_errors)

        def on_task_received(message: Message) -> Any:
            try:
                return handle(message)
            except survivable:
                raise
            except Exception as exc:  # a message Celery could not make a request of: poison, not a defect
                return self.on_invalid_task(None, message, exc)

        return on_task_received

    def on_decode_error(self, message: Message, exc: Exception) -> None:
        self._dead_letter(message, "undecodable", exc)
        super().on_decode_error(message, exc)

    def on_unknown_message(self, body: Any, message: Message) -> None:
        self._dead_letter(message, "unknown_message", None)
        super().on_unknown_message(body, message)

    def on_unknown_task(self, body: Any, message: Message, exc: Exception) -> None:
        self._dead_letter(message, "unknown_task", exc)
        super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body: Any, message: Message, exc: Exception) -> None:
        self._dead_letter(message, "invalid_task", exc)
        super().on_invalid_task(body, message, exc)

    def _dead_letter(self, message: Message, kind: str, exc: Exception | None) -> None:
        raw = getattr(message, "_raw", None)  # kombu's virtual transports keep the envelope as it came
        text = json.dumps(raw, default=repr) if raw is not None else message.body
        reason = "" if exc is None else f"{type(exc).__name__}: {exc}"
        dead_letter(_client(self.app.conf.glmq_settings), text, kind, reason)


@functools.cache
def _client(settings: Settings) -> redis.Redis | RedisCluster:
    return connect(settings, socket_timeout=5)
