"""kombu's Redis transport, made safe for acknowledgements that arrive after a lost connection.

When Redis goes away, Celery closes the broker connection and kombu detaches it from
its transport. An ack or reject of a message received on the old connection, by a
task finishing in that window, then fails inside kombu with an AttributeError that
Celery treats as unrecoverable: the worker exits (seen in tests/faults, Redis kill -9).
Raising a connection error instead lets Celery log the failed ack and carry on. The
message stays unacknowledged, so it is delivered again, and chunks are idempotent.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """A channel that reports a detached connection as a connection error."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection is None or self.connection.client is None:
            raise redis.ConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    """The Redis transport with the channel above."""

    Channel = Channel
