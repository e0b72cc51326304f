"""kombu's Redis transport, made safe for late acknowledgements and for messages it cannot decode.

When Redis goes away, Celery closes the broker connection and kombu detaches it from
its transport. An ack or reject of a message received on the old connection, by a
task finishing in that window, then fails inside kombu with an AttributeError that
Celery treats as unrecoverable: the worker exits (seen in tests/faults, Redis kill -9).
Raising a connection error instead lets Celery log the failed ack and carry on. The
message stays unacknowledged, so it is delivered again, and chunks are idempotent.

A message on the queue that is not a JSON envelope, or whose body is not valid base64, fails
in kombu before Celery sees it, and that too ends the worker; restarted, it would pop the next
such message and die again. Such a message is dead-lettered here (jobs.deadletter) instead.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from queue import Empty
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps, loads

from jobs.deadletter import dead_letter

# kombu's record of a delivered message, as one script. Redis at maxmemory (noeviction) refuses only a
# script's first write, and PERSIST cannot grow memory: the message has just left the queue list, so this
# moves it rather than adds it.
_HOLD = """
redis.call('PERSIST', KEYS[1])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


class QoS(kombu_redis.QoS):
    """kombu's QoS, whose record of a delivered message a full Redis does not refuse."""

    def append(self, message: Any, delivery_tag: str) -> None:
        delivery = message.delivery_info
        record = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
        with self.channel.conn_or_acquire() as client:
            client.eval(_HOLD, 2, self.unacked_index_key, self.unacked_key, time.time(), delivery_tag, record)
        virtual.QoS.append(self, message, delivery_tag)

    @contextlib.contextmanager
    def pipe_or_acquire(self, pipe: Any = None, client: Any = None) -> Iterator[Any]:
        # kombu acks in MULTI/EXEC, and Redis at maxmemory refuses every command queued in a MULTI, even
        # ZREM and HDEL: the ack failed and the worker exited. A plain pipeline frees memory as it should.
        if pipe is not None:
            yield pipe
        else:
            with self.channel.conn_or_acquire(client) as connection:
                yield connection.pipeline(transaction=False)


class Channel(kombu_redis.Channel):
    """A channel that reports a detached connection as a connection error and drops undecodable messages."""

    QoS = QoS

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection is None or self.connection.client is None:
            raise redis.ConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)

    def _brpop_read(self, **options: Any) -> bool:
        # kombu 5.x's own, but for the envelope check: kombu decodes the envelope in the middle of
        # this method, after BRPOP has taken the message, so a wrapper could not recover it.
        try:
            try:
                dest_item = self.client.parse_response(self.client.connection, "BRPOP", **options)
            except self.connection_errors:
                self.client.connection.disconnect()  # the next iteration reconnects
                raise
            if not dest_item:
                raise Empty()
            dest, item = dest_item
            dest = bytes_to_str(dest).rsplit(self.sep, 1)[0]
            self._queue_cycle.rotate(dest)
            envelope = self._envelope(item)
            if envelope is not None:
                self.connection._deliver(envelope, dest)
            return True
        finally:
            self._in_poll = None
            self._flush_brpop_reauth()

    def _envelope(self, item: bytes) -> dict[str, Any] | None:
        """Return the decoded envelope of a message, or dead-letter it and return None."""
        try:
            envelope = loads(bytes_to_str(item))
            if not isinstance(envelope, dict) or not isinstance(envelope.get("properties"), dict):
                raise ValueError("the envelope is not an object with properties")
            properties = envelope["properties"]
            if "delivery_tag" not in properties:
                raise ValueError("the envelope has no delivery tag")
            if envelope.get("body"):
                # kombu decodes it again when it builds the message; a chunk message is a few hundred bytes.
                self.decode_body(envelope["body"], properties.get("body_encoding"))
        except Exception as exc:  # whatever a stranger pushed: never let it end the worker
            with self.conn_or_acquire() as client:
                dead_letter(client, item, "undecodable", f"{type(exc).__name__}: {exc}")
            return None
        return envelope


class Transport(kombu_redis.Transport):
    """The Redis transport with the channel above."""

    Channel = Channel


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """The channel above, on the primary that Redis Sentinel names (kombu's sentinel:// transport)."""


class SentinelTransport(kombu_redis.SentinelTransport):
    """kombu's Sentinel transport with the channel above."""

    Channel = SentinelChannel
