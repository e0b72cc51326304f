"""Job records in Redis: the single source of truth for a prediction job's state.

A job is written before any of its chunks is enqueued. Its payload travels out
of band (claim-check): one key per chunk, the Celery message carries only the job
id and the chunk number. Every key has a TTL.

    glmq:job:<id>            hash: status, rows, chunks, rows_done, model, threshold, times
    glmq:payload:<id>:<k>    the chunk's records, JSON
    glmq:result:<id>:<k>     the chunk's results, JSON
    glmq:done:<id>           set of finished chunk numbers (makes completion idempotent)
    glmq:attempts:<id>       hash: chunk number -> deliveries seen
    glmq:deadlines           sorted set: live job ids by deadline, for the watchdog
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import msgspec
import redis

PREFIX = "glmq"
DEADLINES = f"{PREFIX}:deadlines"


class JobStatus(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value)


def job_key(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def payload_key(job_id: str, chunk: int) -> str:
    return f"{PREFIX}:payload:{job_id}:{chunk}"


def result_key(job_id: str, chunk: int) -> str:
    return f"{PREFIX}:result:{job_id}:{chunk}"


def done_key(job_id: str) -> str:
    return f"{PREFIX}:done:{job_id}"


def attempts_key(job_id: str) -> str:
    return f"{PREFIX}:attempts:{job_id}"


def now_iso() -> str:
    """Return the current UTC time as ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


# Starts one delivery of a chunk. Returns 0 to go on, 1 when the job is gone or
# finished (skip), 2 when this delivery exceeds the retry budget (job failed here).
_START_CHUNK = """
local job = KEYS[1]
if redis.call('EXISTS', job) == 0 then return 1 end
local status = redis.call('HGET', job, 'status')
if status == 'succeeded' or status == 'failed' then return 1 end
if redis.call('SISMEMBER', KEYS[3], ARGV[1]) == 1 then return 1 end
local seen = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[2], ARGV[4])
if seen > tonumber(ARGV[2]) then
  redis.call('HSET', job, 'status', 'failed', 'finished_at', ARGV[3],
    'error', 'chunk ' .. ARGV[1] .. ' failed ' .. (seen - 1) .. ' times; giving up')
  redis.call('ZREM', KEYS[4], ARGV[5])
  return 2
end
redis.call('HSET', job, 'heartbeat', ARGV[6])
if status == 'queued' then
  redis.call('HSET', job, 'status', 'running', 'started_at', ARGV[3])
end
return 0
"""

# Records one chunk's results. Idempotent: a redelivered chunk overwrites its
# result and is counted once. Returns 0 counted, 1 duplicate, 2 job finished, -1 gone.
_FINISH_CHUNK = """
local job = KEYS[1]
if redis.call('EXISTS', job) == 0 then return -1 end
local status = redis.call('HGET', job, 'status')
if status == 'succeeded' or status == 'failed' then return -1 end
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 1 end
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('HINCRBY', job, 'rows_done', ARGV[2])
redis.call('HSET', job, 'heartbeat', ARGV[7])
local done = redis.call('SCARD', KEYS[2])
if done >= tonumber(redis.call('HGET', job, 'chunks')) then
  redis.call('HSET', job, 'status', 'succeeded', 'finished_at', ARGV[5])
  redis.call('EXPIRE', job, ARGV[4])
  redis.call('ZREM', KEYS[4], ARGV[6])
  return 2
end
return 0
"""

# Fails a job unless it already finished. Returns 1 when this call failed it.
_FAIL_JOB = """
local job = KEYS[1]
if redis.call('EXISTS', job) == 0 then return 0 end
local status = redis.call('HGET', job, 'status')
if status == 'succeeded' or status == 'failed' then return 0 end
redis.call('HSET', job, 'status', 'failed', 'finished_at', ARGV[1], 'error', ARGV[2], 'error_code', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[3])
return 1
"""


_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(frozen=True)
class NewJob:
    """What the API knows when it accepts a batch."""

    rows: int
    chunk_rows: int
    model_name: str
    model_version: int
    threshold: float
    owner: str = ""

    @property
    def chunks(self) -> int:
        return -(-self.rows // self.chunk_rows)


class JobStore:
    """Reads and writes job state in one Redis database."""

    def __init__(self, client: redis.Redis, ttl_seconds: int, deadline_seconds: int) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self.deadline = deadline_seconds
        self._start = client.register_script(_START_CHUNK)
        self._finish = client.register_script(_FINISH_CHUNK)
        self._fail = client.register_script(_FAIL_JOB)

    def create(self, job: NewJob, records: Sequence[Any]) -> tuple[str, list[int]]:
        """Write the job record and its payload chunks; return the id and the chunk numbers."""
        if len(records) != job.rows:
            raise ValueError(f"the job declares {job.rows} rows but {len(records)} records were given")
        job_id = uuid.uuid4().hex
        chunks = []
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(
            job_key(job_id),
            mapping={
                "status": JobStatus.QUEUED.value,
                "rows": job.rows,
                "chunks": job.chunks,
                "chunk_rows": job.chunk_rows,
                "rows_done": 0,
                "model_name": job.model_name,
                "model_version": job.model_version,
                "threshold": repr(job.threshold),
                "owner": job.owner,
                "submitted_at": now_iso(),
                "heartbeat": repr(time.time()),
            },
        )
        pipe.expire(job_key(job_id), self.ttl)
        for chunk, start in enumerate(range(0, job.rows, job.chunk_rows)):
            body = msgspec.json.encode(records[start : start + job.chunk_rows])
            pipe.set(payload_key(job_id, chunk), body, ex=self.ttl)
            chunks.append(chunk)
        pipe.zadd(DEADLINES, {job_id: time.time() + self.deadline})
        pipe.execute()
        return job_id, chunks

    def get(self, job_id: str) -> dict[str, str] | None:
        """Return the job record as strings, or None when unknown or expired."""
        record = self.client.hgetall(job_key(job_id))
        return {k.decode(): v.decode() for k, v in record.items()} or None

    def start_chunk(self, job_id: str, chunk: int, max_deliveries: int) -> int:
        """Count a delivery of a chunk and mark the job running; see _START_CHUNK."""
        keys = [job_key(job_id), attempts_key(job_id), done_key(job_id), DEADLINES]
        args = [chunk, max_deliveries, now_iso(), self.ttl, job_id, repr(time.time())]
        return int(self._start(keys=keys, args=args))

    def payload(self, job_id: str, chunk: int) -> list[dict[str, Any]] | None:
        """Return a chunk's records, or None when they expired."""
        body = self.client.get(payload_key(job_id, chunk))
        return None if body is None else msgspec.json.decode(body)

    def finish_chunk(self, job_id: str, chunk: int, rows: int, results: bytes) -> int:
        """Store a chunk's results and count it once; see _FINISH_CHUNK."""
        keys = [job_key(job_id), done_key(job_id), result_key(job_id, chunk), DEADLINES]
        args = [chunk, rows, results, self.ttl, now_iso(), job_id, repr(time.time())]
        outcome = int(self._finish(keys=keys, args=args))
        if outcome == 2:
            self.drop_payload(job_id)
        return outcome

    def fail(self, job_id: str, reason: str, code: str = "job_failed") -> bool:
        """Mark a job failed with a reason (and a code for clients), unless it already finished."""
        failed = bool(self._fail(keys=[job_key(job_id), DEADLINES], args=[now_iso(), reason, job_id, code]))
        if failed:
            self.drop_payload(job_id)
        return failed

    def drop_payload(self, job_id: str) -> None:
        """Delete a finished job's payload chunks; results stay until their TTL."""
        chunks = int(self.client.hget(job_key(job_id), "chunks") or 0)
        if chunks:
            self.client.delete(*(payload_key(job_id, k) for k in range(chunks)))

    def results(self, job_id: str, rows: int, chunk_rows: int, page: range | None = None) -> bytes | None:
        """Return the results of the rows in `page` (all by default) as one JSON array.

        Only the chunks the page touches are read; None when one of them has expired.
        """
        page = range(rows) if page is None else range(page.start, min(page.stop, rows))
        if not page:
            return b"[]"
        numbers = range(page.start // chunk_rows, (page.stop - 1) // chunk_rows + 1)
        parts = self.client.mget([result_key(job_id, k) for k in numbers])
        if any(part is None for part in parts):
            return None
        pieces = []
        for number, part in zip(numbers, parts, strict=True):
            first = number * chunk_rows
            whole = page.start <= first and page.stop >= min(first + chunk_rows, rows)
            # A whole chunk is spliced as stored; only a chunk cut by the page is split into its items.
            inner = (
                part[1:-1] if whole else b",".join(_ITEMS.decode(part)[max(page.start - first, 0) : page.stop - first])
            )
            if inner:
                pieces.append(inner)
        return b"[" + b",".join(pieces) + b"]"

    def unfinished(self) -> int:
        """Return how many jobs are neither succeeded nor failed."""
        return int(self.client.zcard(DEADLINES))

    def live(self) -> list[tuple[str, float]]:
        """Return every job not known to be finished, with its deadline (epoch seconds)."""
        return [(member.decode(), score) for member, score in self.client.zrange(DEADLINES, 0, -1, withscores=True)]

    def pending_chunks(self, job_id: str, chunks: int) -> list[int]:
        """Return the chunk numbers of a job that have no results yet."""
        done = {int(member) for member in self.client.smembers(done_key(job_id))}
        return [chunk for chunk in range(chunks) if chunk not in done]

    def touch(self, job_id: str) -> None:
        """Record progress now, so the watchdog leaves the job alone for a while."""
        self.client.hset(job_key(job_id), "heartbeat", repr(time.time()))

    def forget_deadline(self, job_id: str) -> None:
        """Stop watching a job whose record is gone."""
        self.client.zrem(DEADLINES, job_id)
