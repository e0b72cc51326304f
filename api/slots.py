"""A bound on the requests of one API process that hold a Redis connection for long: `?wait=` and event streams.

Each such request blocks on Redis (BLMOVE, XREAD) for up to tens of seconds, so it takes a slot and a
connection of a pool of its own: it must not hold a connection that the other requests need, and
the pool's socket timeout must outlast the longest block. Past the bound, the caller decides what
the request gets instead (an answer at once, or a 503).
"""

from __future__ import annotations

import threading

from jobs.connection import connect
from settings import Settings


class Slots:
    """At most `limit` long-held requests of this process at once, each on a connection of `client`'s pool."""

    def __init__(self, settings: Settings, limit: int, socket_timeout: float) -> None:
        self._slots = threading.BoundedSemaphore(limit) if limit > 0 else None
        self.client = connect(
            settings, socket_timeout=socket_timeout, socket_connect_timeout=2, max_connections=max(limit, 1)
        )

    def take(self) -> bool:
        """Take a slot; False when every slot is taken (or the bound is 0)."""
        return self._slots is not None and self._slots.acquire(blocking=False)

    def give_back(self) -> None:
        """Free a slot taken with `take`."""
        if self._slots is not None:
            self._slots.release()
