"""Job state in Redis: the single source of truth for a prediction job.

A job is written before any of its chunks is enqueued. Its payload travels out of band
(claim-check): one key per chunk, and the Celery message carries only the job id and the
chunk number. Every key has a TTL; `jobs.keys` names them all.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Any, NamedTuple

import msgspec
import redis
from redis.cluster import RedisCluster

from jobs import keys
from jobs.lua import Scripts
from jobs.record import Job, JobStatus, NewJob, now_iso
from jobs.stats import JobEnd, RowsDone, Stats

log = logging.getLogger(__name__)
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
# A drain message is taken as on its way for this long; past it, the next small job sends another,
# so a lost message delays the line by this much at most.
KICK_TTL_MS = 2_000
# The watchdog fails a job at its deadline; its webhook entry falls due a little after, in case nobody sent it.
WEBHOOK_GRACE_SECONDS = 30
# New jobs are refused past this share of maxmemory, so that running jobs have room for their results.
HEADROOM_FRACTION = 0.9
# INFO is read at most this often per process: the fill level changes slowly next to a request rate.
MEMORY_CHECK_SECONDS = 1.0
# A job's event stream keeps its newest entries only; the final event is always the last.
MAX_EVENTS = 1_000
# How long a new job may wait for its replicas (`wait_replicas`) before it is refused.
WAIT_REPLICAS_MS = 1_000


class NotReplicated(redis.ConnectionError):
    """A new job did not reach its replicas in time: it was failed and must not be reported accepted."""


class StartOutcome(IntEnum):
    """What `start_chunk` decided: run the chunk, skip it, the job failed on its retry budget, or no such chunk."""

    RUN = 0
    SKIP = 1
    GAVE_UP = 2
    NO_SUCH_CHUNK = 3


class FinishOutcome(IntEnum):
    """What `finish_chunk` recorded."""

    GONE = -1
    COUNTED = 0
    DUPLICATE = 1
    SUCCEEDED = 2

    @property
    def counted(self) -> bool:
        return self in (FinishOutcome.COUNTED, FinishOutcome.SUCCEEDED)


class Finished(NamedTuple):
    """A chunk scored: its rows, of which `failed` got a per-row error, and the results as JSON."""

    job_id: str
    chunk: int
    rows: int
    results: bytes
    failed: int = 0


@dataclass(frozen=True)
class Delivery:
    """A chunk this delivery may run: the job it belongs to and its records (None when expired)."""

    job: Job
    records: list[dict[str, Any]] | None


class Ready(NamedTuple):
    """A small job taken from the line, as its entry there reads."""

    job_id: str
    rows: int
    entry: str

    @classmethod
    def parse(cls, entry: str) -> Ready:
        job_id, rows, *_ = entry.split(":")
        return cls(job_id, int(rows), entry)


class JobStore:
    """Reads and writes job state in one Redis database, or in a Redis Cluster."""

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        ttl_seconds: int,
        deadline_seconds: int,
        on_end: Callable[[Sequence[str]], None] | None = None,
        wait_replicas: int = 0,
    ) -> None:
        """`on_end` is called with the jobs a call of this store ended that have a webhook (jobs.webhooks).

        `wait_replicas`: replicas that must hold a new job before `create` returns (Redis WAIT, in the
        same round trip). Replication is asynchronous: without it, a failover may lose an accepted job.
        """
        self.client = client
        self.on_end = on_end
        self.wait_replicas = wait_replicas
        if wait_replicas and isinstance(client, RedisCluster):
            raise ValueError("waiting for replicas is for one primary (Sentinel), not a cluster")
        self.ttl = ttl_seconds
        self.deadline = deadline_seconds
        self.stats = Stats(client)
        self.scripts = Scripts(client)
        self._memory_checked = -math.inf
        self._headroom = True

    def has_headroom(self) -> bool:
        """Return whether Redis has room for a new job: used memory below HEADROOM_FRACTION of maxmemory.

        Read from INFO at most once a second per store; no maxmemory means always. On a cluster every
        primary must have room: a new job's keys may land on any of them.
        """
        now = time.monotonic()
        if now - self._memory_checked >= MEMORY_CHECK_SECONDS:
            self._headroom = all(
                not int(memory.get("maxmemory", 0))
                or int(memory["used_memory"]) < HEADROOM_FRACTION * int(memory["maxmemory"])
                for memory in _per_node(self.client, "memory")
            )
            self._memory_checked = now
        return self._headroom

    def take_lock(self, key: str, owner: str, seconds: int) -> bool:
        """Take a lock for `seconds` unless someone holds it, even when Redis is full; see scripts/take_lock.lua."""
        return bool(self.scripts.run("take_lock", [key], [owner, seconds]))

    def create(self, new: NewJob, records: Sequence[Any], small: bool = False) -> tuple[str, bool]:
        """Write the job record and its payload chunks; return the id, and whether to send a drain message.

        A big job is in line for no worker yet: the caller enqueues its chunks. A `small` one (a single
        chunk) is put in line for a micro-batch here, and the answer says whether a drain message must
        be sent (none is on its way; see scripts/mark_ready.lua).
        Raise redis.OutOfMemoryError when Redis is too full to take it (`has_headroom`), and NotReplicated
        (the job failed) when `wait_replicas` replicas did not acknowledge it within WAIT_REPLICAS_MS.
        """
        if len(records) != new.rows:
            raise ValueError(f"the job declares {new.rows} rows but {len(records)} records were given")
        if small and new.chunks != 1:
            raise ValueError(f"a small job has one chunk, not {new.chunks}")
        if not self.has_headroom():
            raise redis.OutOfMemoryError("refused: Redis is nearly full, and running jobs need the rest")
        job_id = uuid.uuid4().hex
        now = time.time()
        # One round trip (a stage at a time on a cluster, jobs.lua), in an order that leaves nothing
        # unwatched if Redis dies part-way: the deadline index first, so that any job record that exists
        # is one the watchdog sees (it re-drives a stalled job, fails an overdue one, and forgets an entry
        # with no job); then the record and payload, all or nothing, in a script on the job's own slot;
        # then the place in line.
        record = Job.accepted(job_id, new, now).to_hash()
        chunks = [records[start : start + new.chunk_rows] for start in range(0, new.rows, new.chunk_rows)]

        def deadline(pipe: redis.client.Pipeline) -> None:
            pipe.zadd(keys.DEADLINES, {job_id: now + self.deadline})
            if new.webhook_url:  # watched from the start, so a job whose ender died is still announced
                pipe.zadd(keys.WEBHOOKS, {job_id: now + self.deadline + WEBHOOK_GRACE_SECONDS}, nx=True)

        def job(pipe: redis.client.Pipeline) -> None:
            job_keys = [keys.job(job_id), *(keys.payload(job_id, k) for k in range(len(chunks)))]
            fields = [item for pair in record.items() for item in pair]
            payloads = [msgspec.json.encode(chunk) for chunk in chunks]
            self.scripts.queue(pipe, "create_job", job_keys, [self.ttl, len(record), *fields, *payloads])

        def line(pipe: redis.client.Pipeline) -> None:
            self.scripts.queue(pipe, "mark_ready", [keys.READY, keys.KICK], [f"{job_id}:{new.rows}", KICK_TTL_MS])

        def replicated(pipe: redis.client.Pipeline) -> None:
            pipe.execute_command("WAIT", self.wait_replicas, WAIT_REPLICAS_MS)

        stages = [deadline, job, *([line] if small else []), *([replicated] if self.wait_replicas else [])]
        replies = self.scripts.pipelined(*stages)
        if self.wait_replicas and int(replies[-1]) < self.wait_replicas:
            self.fail(job_id, "the job did not reach a replica in time", code="not_replicated")
            raise NotReplicated(f"the job reached {replies[-1]} of {self.wait_replicas} replica(s) in time")
        return job_id, small and bool(replies[-2 if self.wait_replicas else -1])

    def get(self, job_id: str) -> Job | None:
        """Return the job record, or None when unknown or expired."""
        return Job.from_hash(job_id, self.client.hgetall(keys.job(job_id)))

    def start_chunk(self, job_id: str, chunk: int, max_deliveries: int) -> tuple[StartOutcome, Delivery | None]:
        """Count a delivery of a chunk, mark the job running and read what it needs, in one round trip."""
        return self.start_chunks([(job_id, chunk)], max_deliveries)[0]

    def start_chunks(
        self, chunks: Sequence[tuple[str, int]], max_deliveries: int
    ) -> list[tuple[StartOutcome, Delivery | None]]:
        """Start several (job, chunk) deliveries in one round trip; see scripts/start_chunk.lua."""

        def fill(pipe: redis.client.Pipeline) -> None:
            for job_id, chunk in chunks:
                script_keys = [
                    keys.job(job_id), keys.attempts(job_id), keys.done(job_id), keys.payload(job_id, chunk),
                    keys.ended(job_id), keys.events(job_id),
                ]  # fmt: skip
                args = [chunk, max_deliveries, now_iso(), self.ttl, repr(time.time()), MAX_EVENTS]
                self.scripts.queue(pipe, "start_chunk", script_keys, args)

        started = []
        gave_up = []
        for (job_id, _), reply in zip(chunks, self.scripts.pipelined(fill), strict=True):
            outcome = StartOutcome(int(reply[0]))
            if outcome == StartOutcome.GAVE_UP:
                self.forget_deadline(job_id)
                gave_up.append(job_id)
            if outcome != StartOutcome.RUN:
                started.append((outcome, None))
                continue
            flat, body = reply[1], reply[2]
            job = Job.from_hash(job_id, dict(zip(flat[::2], flat[1::2], strict=True)))
            assert job is not None  # the script checked that the job exists
            started.append((outcome, Delivery(job, None if body is None else msgspec.json.decode(body))))
        self._count_failed(gave_up)
        return started

    def finish_chunk(self, job_id: str, chunk: int, rows: int, results: bytes, failed: int = 0) -> FinishOutcome:
        """Store a chunk's results, drop its payload and count it once; see scripts/finish_chunk.lua."""
        return self.finish_chunks([Finished(job_id, chunk, rows, results, failed)])[0]

    def finish_chunks(self, finished: Sequence[Finished]) -> list[FinishOutcome]:
        """Record several scored chunks in one round trip; see scripts/finish_chunk.lua.

        The rows of each chunk counted here, and the time of each job that succeeded, go to `stats`.
        """
        outcomes = self._counted(finished, self.scripts.pipelined(lambda pipe: self._finishing(pipe, finished)))
        ended = [job_id for (job_id, *_), outcome in zip(finished, outcomes, strict=True)
                 if outcome == FinishOutcome.SUCCEEDED]  # fmt: skip
        if ended:
            self.client.zrem(keys.DEADLINES, *ended)
        return outcomes

    def finish_batch(self, finished: Sequence[Finished], taken: Sequence[Ready], holder: str) -> None:
        """Record a micro-batch and end its lease, in one round trip.

        Each job of a micro-batch has one chunk, so once it is recorded the job has ended, whatever
        the outcome (counted, a duplicate, or already failed): it leaves the deadline index too.
        """

        def ended(pipe: redis.client.Pipeline) -> None:
            if finished:
                pipe.zrem(keys.DEADLINES, *(job_id for job_id, *_ in finished))
            if taken:
                pipe.zrem(keys.LEASED, *(ready.entry for ready in taken))
                pipe.delete(keys.held(holder))

        self._counted(finished, self.scripts.pipelined(lambda pipe: self._finishing(pipe, finished), ended))

    def _finishing(self, pipe: redis.client.Pipeline, finished: Sequence[Finished]) -> None:
        for job_id, chunk, rows, results, _ in finished:
            script_keys = [
                keys.job(job_id), keys.done(job_id), keys.result(job_id, chunk), keys.payload(job_id, chunk),
                keys.ended(job_id), keys.events(job_id),
            ]  # fmt: skip
            args = [chunk, rows, results, self.ttl, now_iso(), repr(time.time()), MAX_EVENTS]
            self.scripts.queue(pipe, "finish_chunk", script_keys, args)
        for item in finished:
            # Read after the scripts, in the same round trip: what the stats need of each job.
            pipe.hmget(keys.job(item.job_id), *_ENDING)

    def _counted(self, finished: Sequence[Finished], replies: list[Any]) -> list[FinishOutcome]:
        # Only the call whose script counted a chunk, or ended a job, counts it: each is counted once.
        outcomes = [FinishOutcome(int(reply)) for reply in replies[: len(finished)]]
        fields = replies[len(finished) : 2 * len(finished)]
        rows = [
            RowsDone(model.decode(), item.rows - item.failed, item.failed)
            for item, outcome, (model, *_) in zip(finished, outcomes, fields, strict=True)
            if outcome.counted and model
        ]
        ends = [
            _job_end(job, JobStatus.SUCCEEDED)
            for outcome, job in zip(outcomes, fields, strict=True)
            if outcome == FinishOutcome.SUCCEEDED
        ]
        self._record(rows, ends)
        self._ended(item.job_id for item, outcome, job in zip(finished, outcomes, fields, strict=True)
                    if outcome == FinishOutcome.SUCCEEDED and job[-1])  # fmt: skip
        return outcomes

    def fail(self, job_id: str, reason: str, code: str = "job_failed") -> bool:
        """Mark a job failed with a reason (and a code for clients), unless it already finished."""
        script_keys = [keys.job(job_id), keys.ended(job_id), keys.events(job_id)]
        failed = bool(self.scripts.run("fail_job", script_keys, [now_iso(), reason, code, self.ttl, MAX_EVENTS]))
        if failed:
            self.forget_deadline(job_id)
            self.drop_payload(job_id)
            self._count_failed([job_id])
        return failed

    def wait_ended(self, job_id: str, timeout: float, client: redis.Redis | None = None) -> bool:
        """Block until the job has ended or `timeout` seconds pass; return whether it ended.

        The token stays in place (BLMOVE from a list to itself), so every waiter of a job wakes.
        `client` should be one whose socket timeout exceeds `timeout`.
        """
        key = keys.ended(job_id)
        return (client or self.client).blmove(key, key, timeout, "RIGHT", "LEFT") is not None

    def take_ready(self, max_rows: int, lease_seconds: float, holder: str) -> list[Ready]:
        """Take small jobs, oldest first and up to `max_rows` rows, leased for `lease_seconds` to `holder`.

        `release` them once their results are recorded; see scripts/take_ready.lua.
        """
        script_keys = [keys.READY, keys.LEASED, keys.KICK, keys.held(holder)]
        args = [max_rows, time.time() + lease_seconds, max(1, math.ceil(lease_seconds))]
        return [Ready.parse(entry.decode()) for entry in self.scripts.run("take_ready", script_keys, args)]

    def release(self, taken: Sequence[Ready], holder: str) -> None:
        """End the lease of small jobs whose micro-batch was recorded."""
        if taken:
            pipe = self.client.pipeline(transaction=False)
            pipe.zrem(keys.LEASED, *(ready.entry for ready in taken))
            pipe.delete(keys.held(holder))
            pipe.execute()

    def held(self, holder: str) -> list[Ready]:
        """Return the small jobs `holder` took and has not released."""
        return [Ready.parse(entry.decode()) for entry in self.client.lrange(keys.held(holder), 0, -1)]

    def requeue(self, taken: Sequence[Ready]) -> int:
        """Put taken small jobs that are still leased back in line, each to run alone; return how many."""
        if not taken:
            return 0
        return int(self.scripts.run("requeue", [keys.READY, keys.LEASED], [ready.entry for ready in taken]))

    def requeue_lapsed(self, now: float | None = None) -> int:
        """Put small jobs whose lease lapsed back in line, each to run alone; return how many."""
        before = time.time() if now is None else now
        return int(self.scripts.run("requeue", [keys.READY, keys.LEASED], ["--lapsed-before", before]))

    def ready_backlog(self) -> tuple[int, bool]:
        """Return how many small jobs wait in line, and whether a drain message is on its way."""
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(keys.READY)
        pipe.exists(keys.KICK)
        waiting, kicked = pipe.execute()
        return int(waiting), bool(kicked)

    def drop_payload(self, job_id: str) -> None:
        """Delete a finished job's payload chunks; results stay until their TTL."""
        chunks = int(self.client.hget(keys.job(job_id), "chunks") or 0)
        if chunks:
            self.client.delete(*(keys.payload(job_id, k) for k in range(chunks)))

    def results(
        self, job_id: str, rows: int, chunk_rows: int, page: range | None = None,
        unscored: Callable[[int], bytes] | None = None,
    ) -> bytes | None:  # fmt: skip
        """Return the results of the rows in `page` (all by default) as one JSON array.

        Only the chunks the page touches are read; None when one of them has expired. With `unscored`,
        a chunk without results is not taken as expired: each of its rows is `unscored(row)` instead
        (a job cancelled before its chunks ran keeps a place for each of their rows).
        """
        page = range(rows) if page is None else range(page.start, min(page.stop, rows))
        if not page:
            return b"[]"
        numbers = range(page.start // chunk_rows, (page.stop - 1) // chunk_rows + 1)
        parts = self.client.mget([keys.result(job_id, k) for k in numbers])
        if unscored is None and any(part is None for part in parts):
            return None
        pieces = []
        for number, part in zip(numbers, parts, strict=True):
            first = number * chunk_rows
            if part is None:
                span = range(max(page.start, first), min(page.stop, first + chunk_rows, rows))
                pieces.append(b",".join(unscored(row) for row in span))  # type: ignore[misc]  # checked above
                continue
            whole = page.start <= first and page.stop >= min(first + chunk_rows, rows)
            # A whole chunk is spliced as stored; only a chunk cut by the page is split into its items.
            inner = (
                part[1:-1] if whole else b",".join(_ITEMS.decode(part)[max(page.start - first, 0) : page.stop - first])
            )
            if inner:
                pieces.append(inner)
        return b"[" + b",".join(pieces) + b"]"

    def result_chunk(self, job_id: str, chunk: int) -> bytes | None:
        """Return one chunk's stored results (a JSON array), or None when it has expired."""
        return self.client.get(keys.result(job_id, chunk))

    def has_results(self, job_id: str, chunks: int) -> bool:
        """Return whether every chunk's results of a job are still stored."""
        return not chunks or int(self.client.exists(*(keys.result(job_id, k) for k in range(chunks)))) == chunks

    def unfinished(self) -> int:
        """Return how many jobs are neither succeeded nor failed."""
        return int(self.client.zcard(keys.DEADLINES))

    def live(self) -> list[tuple[str, float]]:
        """Return every job not known to be finished, with its deadline (epoch seconds)."""
        return [
            (member.decode(), score) for member, score in self.client.zrange(keys.DEADLINES, 0, -1, withscores=True)
        ]

    def pending_chunks(self, job_id: str, chunks: int) -> list[int]:
        """Return the chunk numbers of a job that have no results yet."""
        done = {int(member) for member in self.client.smembers(keys.done(job_id))}
        return [chunk for chunk in range(chunks) if chunk not in done]

    def touch(self, job_id: str) -> None:
        """Record progress now, so the watchdog leaves the job alone for a while."""
        self.client.hset(keys.job(job_id), "heartbeat", repr(time.time()))

    def forget_deadline(self, job_id: str) -> None:
        """Stop watching a job that finished or whose record is gone."""
        self.client.zrem(keys.DEADLINES, job_id)

    def _count_failed(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        pipe = self.client.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(keys.job(job_id), *_ENDING)
        try:
            replies = pipe.execute()
        except redis.RedisError as exc:
            log.warning("the times of %d failed job(s) are lost: %s", len(job_ids), exc)
            return
        self._record((), [_job_end(job, JobStatus.FAILED) for job in replies])
        self._ended(job_id for job_id, job in zip(job_ids, replies, strict=True) if job[-1])

    def _ended(self, job_ids: Iterable[str]) -> None:
        ended = list(job_ids)
        if ended and self.on_end is not None:
            self.on_end(ended)

    def _record(self, rows: Sequence[RowsDone], ends: Sequence[JobEnd | None]) -> None:
        # The stats are global keys, so they are written apart from the job's own. Losing a count to
        # a Redis error is better than failing the caller, whose job state is already recorded.
        try:
            self.stats.record(rows, [end for end in ends if end is not None])
        except redis.RedisError as exc:
            log.warning("the counts of %d chunk(s) and %d job(s) are lost: %s", len(rows), len(ends), exc)


_ENDING = ("model_name", "submitted_at", "finished_at", "webhook_url")


def _per_node(client: redis.Redis | RedisCluster, section: str) -> list[dict[str, Any]]:
    """Return a section of INFO from one Redis, or from each primary of a cluster."""
    if isinstance(client, RedisCluster):
        return list(client.info(section, target_nodes=RedisCluster.PRIMARIES).values())
    return [client.info(section)]


def _job_end(fields: list[bytes | None], status: JobStatus) -> JobEnd | None:
    """Return how a job that ended is counted, from its `_ENDING` fields (None when its record is gone)."""
    model, submitted, finished, _ = fields
    if model is None or submitted is None or finished is None:
        return None
    seconds = (datetime.fromisoformat(finished.decode()) - datetime.fromisoformat(submitted.decode())).total_seconds()
    return JobEnd(model.decode(), status.value, seconds)
