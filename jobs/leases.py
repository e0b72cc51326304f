"""Leases: how the watchdog knows, within seconds, that the process running some work has died.

A worker process holds a lease for each chunk it runs (`glmq:leases`, "<job id>:<chunk>" scored by
expiry) and for each small job of the micro-batch it runs (`glmq:{batch}:leased`, written by
take_ready.lua). A heartbeat thread in the process renews them every `renew_seconds`, and renews
the process's own entry in `glmq:workers` with them. A process that dies stops renewing: its
leases lapse `lease_seconds` after the last renewal at most, and the watchdog re-drives the work.
A live chunk, however slow, keeps its lease and is never re-driven; the time limits bound it.

A lease is released only when the work's outcome is recorded. Work that raised (Redis went away
mid-chunk, say) keeps its lease until it lapses, so it is re-driven rather than forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Collection

import redis

from jobs import keys

# A worker whose heartbeat lapsed this long ago is dropped from the set of workers.
FORGET_WORKERS_AFTER_SECONDS = 3600


def chunk_lease(job_id: str, chunk: int) -> str:
    """Return the lease member of one chunk of a job."""
    return f"{job_id}:{chunk}"


def parse_chunk_lease(member: str) -> tuple[str, int]:
    """Return the job id and chunk number a lease member names."""
    job_id, chunk = member.rsplit(":", 1)
    return job_id, int(chunk)


class Leases:
    """Chunk leases and worker heartbeats in one Redis database."""

    def __init__(self, client: redis.Redis, lease_seconds: float) -> None:
        self.client = client
        self.lease_seconds = lease_seconds

    @property
    def renew_seconds(self) -> float:
        """How often a holder renews: five renewals fit in a lease, so a slow round trip or two is harmless."""
        return self.lease_seconds / 5

    def hold(self, member: str) -> None:
        """Take the lease of a chunk about to run."""
        self.client.zadd(keys.LEASES, {member: time.time() + self.lease_seconds})

    def release(self, member: str) -> None:
        """End the lease of a chunk whose outcome is recorded."""
        self.client.zrem(keys.LEASES, member)

    def renew(self, worker: str, chunks: Collection[str], entries: Collection[str]) -> None:
        """Renew a worker process's heartbeat and the leases it holds, in one round trip.

        Only leases that still exist are renewed (XX): one the watchdog took back stays taken.
        """
        expiry = time.time() + self.lease_seconds
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(keys.WORKERS, {worker: expiry})
        if chunks:
            pipe.zadd(keys.LEASES, dict.fromkeys(chunks, expiry), xx=True)
        if entries:
            pipe.zadd(keys.LEASED, dict.fromkeys(entries, expiry), xx=True)
        pipe.execute()

    def leave(self, worker: str) -> None:
        """Remove a worker process that stops cleanly from the live ones."""
        self.client.zrem(keys.WORKERS, worker)

    def workers_alive(self, now: float | None = None) -> int:
        """Return how many worker processes renewed their heartbeat within a lease."""
        now = time.time() if now is None else now
        return int(self.client.zcount(keys.WORKERS, now, "+inf"))

    def lapsed(self, now: float | None = None) -> list[str]:
        """Return the chunk leases that lapsed before `now`."""
        now = time.time() if now is None else now
        return [member.decode() for member in self.client.zrangebyscore(keys.LEASES, "-inf", now)]

    def take_back(self, member: str) -> bool:
        """Remove a lapsed lease; return whether this caller removed it (and so re-drives its chunk)."""
        return bool(self.client.zrem(keys.LEASES, member))

    def held(self, members: Collection[str], now: float | None = None) -> set[str]:
        """Return which of `members` hold a live lease."""
        if not members:
            return set()
        now = time.time() if now is None else now
        members = list(members)
        scores = self.client.zmscore(keys.LEASES, members)
        return {member for member, score in zip(members, scores, strict=True) if score is not None and score > now}

    def forget_dead_workers(self, now: float | None = None) -> None:
        """Drop workers whose heartbeat lapsed long ago, so the set stays small."""
        now = time.time() if now is None else now
        self.client.zremrangebyscore(keys.WORKERS, "-inf", now - FORGET_WORKERS_AFTER_SECONDS)
