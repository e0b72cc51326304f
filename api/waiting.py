"""Server-side waiting: `?wait=<seconds>` holds a request until its job ends, on Redis, not in a loop.

A waiter blocks one server thread and one Redis connection (BLMOVE on the job's `ended` token).
Their number per process is bounded below the thread count, so requests that do not wait always
find a thread; past the bound, a request that asked to wait is answered at once, as if it had not.
"""

from __future__ import annotations

from api.errors import ApiError
from api.numbers import decimal
from api.slots import Slots
from jobs import JobStore
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


class Waiters(Slots):
    """At most `limit` requests of this process waiting at once, each on a connection of its own."""

    def __init__(self, settings: Settings, limit: int) -> None:
        super().__init__(settings, limit, socket_timeout=MAX_WAIT_SECONDS + 5)

    def wait(self, jobs: JobStore, job_id: str, seconds: float) -> bool:
        """Wait up to `seconds` for the job to end; return False at once when every slot is taken."""
        if not self.take():
            return False
        try:
            return jobs.wait_ended(job_id, seconds, client=self.client)
        finally:
            self.give_back()
