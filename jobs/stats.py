"""The service's running counts: rows scored and failed per model, how long jobs took, webhook outcomes.

Whatever process ends a chunk or a job (a worker, the watchdog, the API when a client cancels)
adds to two hashes in Redis, and the API's /metrics reads them when it is scraped. So a scrape of
any API process sees the whole service, and no count dies with the process that made it.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

import redis

from jobs import keys

# From one row on an idle service (tens of milliseconds) up to the default job deadline (600 s).
JOB_SECONDS_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, math.inf)


class RowsDone(NamedTuple):
    """Rows of one model whose chunk was counted: scored, and failed with a per-row error."""

    model: str
    scored: int
    failed: int


class JobEnd(NamedTuple):
    """A job that ended: its model, its final status and the seconds from submission to its end."""

    model: str
    status: str
    seconds: float


class RowCount(NamedTuple):
    """A model's rows since the counts began."""

    scored: int
    failed: int


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts by upper bound, as Prometheus wants them (the last bound is +Inf), and their sum."""

    buckets: list[tuple[float, int]]
    total: float

    @property
    def count(self) -> int:
        return self.buckets[-1][1]


@dataclass(frozen=True)
class Snapshot:
    """The counts as read at one moment."""

    rows: dict[str, RowCount]
    job_seconds: dict[tuple[str, str], Histogram]  # by (model, status)
    poison: dict[str, int]  # dead-lettered messages, by kind (jobs.deadletter)
    webhooks: dict[str, int]  # webhook attempts, by outcome (jobs.webhooks)


class Stats:
    """Adds to and reads the service's counts in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def record(self, rows: Iterable[RowsDone] = (), ends: Iterable[JobEnd] = (), webhooks: Iterable[str] = ()) -> None:
        """Add counted rows, ended jobs and the outcomes of webhook attempts, in one transaction."""
        pipe = self.client.pipeline(transaction=True)
        for model, scored, failed in rows:
            # Both fields even when one adds 0, so a model's two counters appear together.
            pipe.hincrby(keys.STATS_ROWS, f"{model}:scored", scored)
            pipe.hincrby(keys.STATS_ROWS, f"{model}:failed", failed)
        for model, status, seconds in ends:
            seconds = max(seconds, 0.0)  # the API's and a worker's clocks may disagree a little
            bound = JOB_SECONDS_BUCKETS[bisect.bisect_left(JOB_SECONDS_BUCKETS, seconds)]
            pipe.hincrby(keys.STATS_JOB_SECONDS, f"{model}:{status}:{bound!r}", 1)
            pipe.hincrbyfloat(keys.STATS_JOB_SECONDS, f"{model}:{status}:sum", seconds)
        for outcome in webhooks:
            pipe.hincrby(keys.STATS_WEBHOOKS, outcome, 1)
        if len(pipe):
            pipe.execute()

    def read(self) -> Snapshot:
        """Return every count, read in one transaction."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(keys.STATS_ROWS)
        pipe.hgetall(keys.STATS_JOB_SECONDS)
        pipe.hgetall(keys.STATS_POISON)
        pipe.hgetall(keys.STATS_WEBHOOKS)
        row_fields, second_fields, poison, webhooks = pipe.execute()
        rows: dict[str, dict[str, int]] = {}
        for name, value in row_fields.items():
            model, kind = name.decode().rsplit(":", 1)
            rows.setdefault(model, {"scored": 0, "failed": 0})[kind] = int(value)
        counts: dict[tuple[str, str], list[int]] = {}
        sums: dict[tuple[str, str], float] = {}
        for name, value in second_fields.items():
            model, status, tail = name.decode().rsplit(":", 2)
            if tail == "sum":
                sums[model, status] = float(value)
                continue
            # Placed by its bound, so counts recorded under other buckets still land in a sound one.
            slot = bisect.bisect_left(JOB_SECONDS_BUCKETS, float(tail))
            counts.setdefault((model, status), [0] * len(JOB_SECONDS_BUCKETS))[slot] += int(value)
        return Snapshot(
            rows={model: RowCount(**count) for model, count in rows.items()},
            job_seconds={
                labels: Histogram(
                    list(zip(JOB_SECONDS_BUCKETS, itertools.accumulate(per_bucket))), sums.get(labels, 0.0)
                )
                for labels, per_bucket in counts.items()
            },
            poison={kind.decode(): int(count) for kind, count in poison.items()},
            webhooks={outcome.decode(): int(count) for outcome, count in webhooks.items()},
        )
