"""The heartbeat of one worker process: renews its leases while it lives (jobs.leases)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Collection, Iterator

import redis

from jobs.leases import Leases

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """A daemon thread renewing this process's heartbeat and the leases of the work it runs."""

    def __init__(self, leases: Leases, worker: str) -> None:
        super().__init__(name="glmq-heartbeat", daemon=True)
        self.leases = leases
        self.worker = worker
        self._chunks: set[str] = set()
        self._entries: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()

    def run(self) -> None:
        while True:
            with self._lock:
                chunks, entries = set(self._chunks), set(self._entries)
            try:
                self.leases.renew(self.worker, chunks, entries)
            except redis.RedisError as exc:
                log.warning("heartbeat cannot reach redis: %s", type(exc).__name__)
            if self._stopped.wait(self.leases.renew_seconds):
                return

    @contextlib.contextmanager
    def chunk(self, member: str) -> Iterator[None]:
        """Hold a chunk's lease while the block runs; release it only when the block returns.

        A block that raised leaves the lease to lapse, so that the watchdog re-drives the chunk.
        """
        self.leases.hold(member)
        with self._lock:
            self._chunks.add(member)
        try:
            yield
        finally:
            with self._lock:
                self._chunks.discard(member)
        self.leases.release(member)

    @contextlib.contextmanager
    def batch(self, entries: Collection[str]) -> Iterator[None]:
        """Renew the leases of a micro-batch's small jobs (take_ready took them) while the block runs."""
        with self._lock:
            self._entries.update(entries)
        try:
            yield
        finally:
            with self._lock:
                self._entries.difference_update(entries)

    def stop(self) -> None:
        """Stop renewing and leave the set of live workers."""
        self._stopped.set()
        with contextlib.suppress(redis.RedisError):
            self.leases.leave(self.worker)
