"""Server-side waiting: `?wait=<seconds>` holds a request until its job ends, on Redis, not in a loop.

A waiter blocks one server thread and one Redis connection (BLMOVE on the job's `ended` token).
Their number per process is bounded below the thread count, so requests that do not wait always
find a thread; past the bound, a request that asked to wait is answered at once, as if it had not.
"""

from __future__ import annotations

import threading

from api.errors import ApiError
from api.numbers import decimal
from jobs import JobStore
from jobs.connection import connect
from settings import Settings

MAX_WAIT_SECONDS = 30.0


def parse_wait(raw: str | None) -> float | None:
    """Return the seconds a request may wait for its job to end, checked to lie in (0, 30]."""
    if raw is None:
        return None
    value = decimal(raw)
    if value is None or not 0.0 < value <= MAX_WAIT_SECONDS:
        raise ApiError(
            422, "invalid_wait", f"wait must be a number of seconds above 0 and at most {MAX_WAIT_SECONDS:g}.",
            {"wait": raw},
        )  # fmt: skip
    return value


class Waiters:
    """At most `limit` requests of this process waiting at once, each on a connection of its own."""

    def __init__(self, settings: Settings, limit: int) -> None:
        self._slots = threading.BoundedSemaphore(limit) if limit > 0 else None
        # Its own pool: a blocked BLMOVE must not hold a connection the other requests need, and its
        # socket timeout must outlast the longest wait.
        self.client = connect(
            settings, socket_timeout=MAX_WAIT_SECONDS + 5, socket_connect_timeout=2, max_connections=max(limit, 1)
        )

    def wait(self, jobs: JobStore, job_id: str, seconds: float) -> bool:
        """Wait up to `seconds` for the job to end; return False at once when every slot is taken."""
        if self._slots is None or not self._slots.acquire(blocking=False):
            return False
        try:
            return jobs.wait_ended(job_id, seconds, client=self.client)
        finally:
            self._slots.release()
