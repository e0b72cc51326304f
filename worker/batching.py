"""Micro-batching: many small jobs, from any client, scored in one pipeline call.

Small jobs do not get a Celery message each. The API puts them in line in Redis and sends one
drain message when none is on its way (jobs.broker.submit). A drain takes whatever is in line,
up to a row cap, scores it and takes again, until the line is empty: with nothing else waiting a
job is scored at once, and while the worker is busy the next batch gathers by itself (Triton's
dynamic batching with a queue delay of zero). Taken jobs are leased, and the process's heartbeat
renews the leases while the batch runs (jobs.leases); the watchdog puts those of a dead worker
back in line, and completion is idempotent, so a job is never lost nor doubled.

A batch that kills its process or overruns a time limit is put back one job per batch, so only
the job at fault fails, with the reason a chunk of a big job would give.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from celery.exceptions import SoftTimeLimitExceeded
from opentelemetry import trace

from jobs import JobStore
from jobs.store import Delivery, Finished, Ready, StartOutcome
from model_store import ModelStoreError
from training import scoring
from worker.heartbeat import Heartbeat
from worker.models import ModelCache

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


@dataclass(frozen=True)
class Batcher:
    """Takes small jobs in line and scores them together, grouped by model version."""

    jobs: JobStore
    models: ModelCache
    max_rows: int
    lease_seconds: float
    max_deliveries: int
    soft_limit: int
    heartbeat: Heartbeat

    def drain(self, holder: str, budget_seconds: float, more: Callable[[], None]) -> int:
        """Score batches until the line is empty or the budget is spent (then call `more`); return jobs run."""
        deadline = time.monotonic() + budget_seconds
        done = 0
        while taken := self.jobs.take_ready(self.max_rows, self.lease_seconds, holder):
            try:
                with self.heartbeat.batch([ready.entry for ready in taken]):
                    done += self.run(taken, holder)
            except SoftTimeLimitExceeded:
                self.overran(taken, holder, f"chunk 0 exceeded the time limit of {self.soft_limit} s")
                more()  # the hard limit is near: a fresh message goes on with the rest
                break
            if time.monotonic() >= deadline:
                more()  # hand the rest to a fresh message, so chunks of big jobs get their turn
                break
        return done

    def run(self, taken: list[Ready], holder: str) -> int:
        """Score one micro-batch of small jobs and record every job's outcome; return jobs scored."""
        started = self.jobs.start_chunks([(ready.job_id, 0) for ready in taken], self.max_deliveries)
        groups: dict[tuple[str, int], list[Delivery]] = defaultdict(list)
        for ready, (outcome, delivery) in zip(taken, started, strict=True):
            if outcome != StartOutcome.RUN or delivery is None:
                continue
            if delivery.records is None:
                self.jobs.fail(ready.job_id, "the payload of chunk 0 expired before it ran")
                continue
            groups[delivery.job.model_name, delivery.job.model_version].append(delivery)
        finished: list[Finished] = []
        for (name, version), deliveries in groups.items():
            finished += self._score(name, version, deliveries)
        self.jobs.finish_batch(finished, taken, holder)
        if finished:
            ids = " ".join(job_id for job_id, *_ in finished)
            log.info("scored a micro-batch of %d jobs, %d rows: %s", len(finished), sum(f[2] for f in finished), ids)
        return len(finished)

    def overran(self, taken: list[Ready], holder: str, reason: str) -> None:
        """Fail a batch of one that overran a time limit; put a bigger batch back, one job per batch."""
        if len(taken) == 1:
            self.jobs.fail(taken[0].job_id, reason)
            self.jobs.release(taken, holder)
        else:
            log.warning("a micro-batch of %d jobs overran; each runs alone next: %s", len(taken), reason)
            self.jobs.requeue(taken)

    def _score(self, name: str, version: int, deliveries: list[Delivery]) -> list[Finished]:
        # The span joins the trace of the request that sent the drain message; it names every job.
        attributes = {
            "glmq.job_ids": [d.job.id for d in deliveries],
            "glmq.rows": sum(len(d.records or []) for d in deliveries),
            "glmq.model": name,
            "glmq.model_version": version,
        }
        try:
            with tracer.start_as_current_span("score batch", attributes=attributes):
                pipeline = self.models.get(name, version).pipeline
                results = scoring.score_batches(
                    pipeline, [d.records or [] for d in deliveries], [d.job.threshold for d in deliveries],
                    strict=[d.job.strict for d in deliveries], fields=[d.job.fields for d in deliveries],
                    explain=[d.job.explain for d in deliveries],
                )  # fmt: skip
        except ModelStoreError as exc:
            for d in deliveries:
                self.jobs.fail(d.job.id, f"model {name} v{version} cannot be loaded: {exc}")
            return []
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # a defect, not bad input: bad values are per-row errors
            log.exception("a micro-batch of %d jobs could not be scored", len(deliveries))
            for d in deliveries:
                self.jobs.fail(d.job.id, f"the job could not be scored: {type(exc).__name__}")
            return []
        encode = msgspec.json.encode
        return [
            Finished(d.job.id, 0, len(rows), encode(rows), scoring.failed_rows(rows))
            for d, rows in zip(deliveries, results, strict=True)
        ]
