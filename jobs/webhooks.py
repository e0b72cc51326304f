"""Webhook deliveries: the event a job's end sends, its record in Redis, and when each attempt is due.

A job accepted with a `Webhook-Url` carries it in its record, and its id enters `keys.WEBHOOKS` in
the same round trip (jobs.store). When the job ends, the process whose call ended it claims the
first attempt and sends one message to the `webhooks` queue (`dispatch`). The watchdog looks at
every entry of `keys.WEBHOOKS` that falls due (`sweep`): an entry is due when a retry is, when an
attempt outlived its time (its worker died), or at the job's deadline (its ender died before it sent).

Claims are made in Redis (scripts/claim_webhook.lua): one claim, and so one message, per attempt
while the claim holds. A message carries the attempt it is for, and only the next attempt may start,
so a message sent again after a lapsed claim, or redelivered by the broker, does nothing; at most one
attempt runs at a time, and every attempt of a job sends the same body under the same `webhook-id`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

import msgspec
import redis
from celery import Celery

from jobs import keys
from jobs.broker import DELIVER_WEBHOOK, WEBHOOK_QUEUE
from jobs.lua import Scripts
from jobs.record import Job, ModelRef, now_iso
from jobs.stats import Stats

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 5.0
# An attempt holds its delivery this long: connect and read timeouts, and room to record the outcome.
# Past it, the watchdog takes the attempt as lost with its worker and claims the next.
ATTEMPT_SECONDS = 2 * TIMEOUT_SECONDS + 5
# A claimed attempt's message should start within this; if not (lost, or a long backlog), the watchdog
# claims and sends it again: the first of the two to start runs it, the other does nothing.
CLAIM_SECONDS = 60
# While a job runs, its entry is looked at again after this long (its end normally sends at once).
RUNNING_RECHECK_SECONDS = 60


class DeliveryState(StrEnum):
    """Where a job's webhook delivery stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    GONE = "gone"  # the receiver answered 410: no further attempts
    ABANDONED = "abandoned"  # every attempt failed, or the event could no longer be built


class EventData(msgspec.Struct):
    """What a webhook event says of the job: its status without results, and where to read them."""

    task_id: str
    status: Literal["succeeded", "failed"]
    rows: int
    rows_done: int
    model: ModelRef
    threshold: float
    status_url: str


class Event(msgspec.Struct):
    """The body of a webhook request, in the Standard Webhooks shape: type, timestamp, data."""

    type: Literal["job.succeeded", "job.failed"]
    timestamp: str
    data: EventData

    @classmethod
    def of(cls, job: Job) -> Event:
        """Return the event announcing a job's end."""
        status: Literal["succeeded", "failed"] = "succeeded" if job.status == "succeeded" else "failed"
        data = EventData(
            task_id=job.id,
            status=status,
            rows=job.rows,
            rows_done=job.rows_done,
            model=ModelRef(job.model_name, job.model_version),
            threshold=job.threshold,
            status_url=f"{(job.base_url or '/').rstrip('/')}/tasks/{job.id}",
        )
        return cls(f"job.{status}", job.finished_at or now_iso(), data)  # type: ignore[arg-type]


class Delivery(msgspec.Struct, kw_only=True, frozen=True):
    """A webhook delivery as stored: its hash fields, typed."""

    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    delivered_at: str | None = None
    next_at: float | None = None


@dataclass(frozen=True)
class Attempt:
    """An attempt a worker may make now: the URL, the body (None until the first attempt builds it)."""

    job_id: str
    number: int
    url: str
    body: bytes | None

    @property
    def message_id(self) -> str:
        """Return the Standard Webhooks message id: one per job, the same on every attempt."""
        return f"msg_{self.job_id}"


def backoff(attempt: int, base: float, rng: random.Random | None = None) -> float:
    """Return the seconds to wait after failed attempt `attempt` (from 1): base doubling, ±25 % jitter."""
    return base * 2 ** (attempt - 1) * (rng or random).uniform(0.75, 1.25)


class Webhooks:
    """Reads and writes webhook deliveries in one Redis database."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.scripts = Scripts(client)
        self.stats = Stats(client)

    def claim(self, job_ids: Sequence[str], now: float | None = None) -> list[tuple[str, int]]:
        """Claim the next attempt of each job's delivery that may start now; return (job id, attempt) pairs.

        Each entry of `keys.WEBHOOKS` is moved to when it should next be looked at, or dropped when done.
        """
        if not job_ids:
            return []
        now = time.time() if now is None else now

        def fill(pipe: redis.client.Pipeline) -> None:
            for job_id in job_ids:
                script_keys = [keys.job(job_id), keys.webhook(job_id)]
                self.scripts.queue(pipe, "claim_webhook", script_keys, [repr(now), self.ttl, CLAIM_SECONDS])

        claimed, later, done = [], {}, []
        for job_id, (code, value) in zip(job_ids, _pairs(self.scripts.pipelined(fill)), strict=True):
            if code == 1:
                claimed.append((job_id, int(value)))
                later[job_id] = now + CLAIM_SECONDS
            elif code == 0:
                later[job_id] = float(value) if value else now + RUNNING_RECHECK_SECONDS
            else:
                done.append(job_id)
        pipe = self.client.pipeline(transaction=False)
        if later:
            pipe.zadd(keys.WEBHOOKS, later)
        if done:
            pipe.zrem(keys.WEBHOOKS, *done)
        pipe.execute()
        return claimed

    def due(self, now: float | None = None, limit: int = 1_000) -> list[str]:
        """Return the jobs whose delivery should be looked at now."""
        now = time.time() if now is None else now
        return [member.decode() for member in self.client.zrangebyscore(keys.WEBHOOKS, "-inf", now, 0, limit)]

    def start(self, job_id: str, attempt: int, now: float | None = None) -> Attempt | None:
        """Start attempt `attempt` if it is the next one; None when it is not (or the delivery is over)."""
        busy_until = (time.time() if now is None else now) + ATTEMPT_SECONDS
        reply = self.scripts.run("start_webhook", [keys.webhook(job_id)], [attempt, repr(busy_until), self.ttl])
        if int(reply[0]) != 1:
            return None
        self.client.zadd(keys.WEBHOOKS, {job_id: busy_until})
        return Attempt(job_id, attempt, reply[1].decode(), reply[2] or None)

    def keep_body(self, job_id: str, body: bytes) -> None:
        """Store the event body of a delivery, so that every attempt sends the same one."""
        self.client.hsetnx(keys.webhook(job_id), "body", body)

    def finish(
        self,
        attempt: Attempt,
        state: DeliveryState,
        status: int | None = None,
        error: str = "",
        next_at: float | None = None,
    ) -> bool:
        """Record how an attempt ended; schedule the next one when `state` is pending. Return whether recorded.

        A recorded attempt is counted once by its outcome (`outcome`), for /metrics.
        """
        delivered_at = now_iso() if state == DeliveryState.DELIVERED else ""
        args = [attempt.number, state.value, "" if status is None else status, error[:500], delivered_at,
                "" if next_at is None else repr(next_at), self.ttl]  # fmt: skip
        recorded = bool(self.scripts.run("finish_webhook", [keys.webhook(attempt.job_id)], args))
        if recorded and state == DeliveryState.PENDING and next_at is not None:
            self.client.zadd(keys.WEBHOOKS, {attempt.job_id: next_at})
        elif recorded:
            self.client.zrem(keys.WEBHOOKS, attempt.job_id)
        if recorded:
            try:
                self.stats.record(webhooks=[outcome(state)])
            except redis.RedisError as exc:  # the attempt is recorded; only its count is lost
                log.warning("the count of a webhook attempt of job %s is lost: %s", attempt.job_id, exc)
        return recorded

    def get(self, job_id: str) -> Delivery | None:
        """Return a job's delivery record, or None before its first claim."""
        fields = self.client.hgetall(keys.webhook(job_id))
        if not fields:
            return None
        strings = {k.decode(): v.decode() for k, v in fields.items() if k in _PUBLIC}
        return msgspec.convert(strings, Delivery, strict=False)


_PUBLIC = {name.encode() for name in Delivery.__struct_fields__}


def outcome(state: DeliveryState) -> str:
    """Return how an attempt that ended the delivery in `state` is counted: pending means another is due."""
    return "retried" if state == DeliveryState.PENDING else state.value


def _pairs(replies: Sequence[list[object]]) -> list[tuple[int, str]]:
    pairs = []
    for reply in replies:
        value = reply[1] if len(reply) > 1 else b""
        pairs.append((int(reply[0]), value.decode() if isinstance(value, bytes) else str(value)))  # type: ignore[arg-type]
    return pairs


def dispatch(app: Celery, webhooks: Webhooks, job_ids: Sequence[str], now: float | None = None) -> int:
    """Claim and send the next attempt of each job's delivery that may start now; return how many were sent.

    A claim whose message is lost here is sent again by the watchdog when the claim lapses.
    """
    sent = 0
    for job_id, attempt in webhooks.claim(job_ids, now):
        app.send_task(DELIVER_WEBHOOK, args=[job_id, attempt], queue=WEBHOOK_QUEUE)
        sent += 1
    return sent


def on_end(app: Celery, webhooks: Webhooks) -> Callable[[Sequence[str]], None]:
    """Return the JobStore hook that sends the first attempt for jobs that ended with a webhook."""

    def ended(job_ids: Sequence[str]) -> None:
        try:
            dispatch(app, webhooks, job_ids)
        except Exception as exc:  # the job has ended whatever happens here; the watchdog sends it later
            log.warning("webhook of %d job(s) left to the watchdog: %s", len(job_ids), exc)

    return ended


def sweep(app: Celery, webhooks: Webhooks, now: float | None = None) -> int:
    """Send the attempts that fell due (retries, lapsed claims, ends nobody sent); return how many."""
    return dispatch(app, webhooks, webhooks.due(now), now)
