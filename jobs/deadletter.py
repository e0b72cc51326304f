"""The dead-letter list: broker messages no worker can run, kept for a while so that someone can look.

A message that cannot be decoded (not JSON, a body that is not base64 or not JSON), that names an
unknown task, or whose arguments are not a job id and a chunk number would otherwise kill the
worker or vanish. Instead its raw head is logged, it is counted by kind (shown on /metrics), and
it is pushed onto `keys.DEADLETTER`: a list of bounded length, whose TTL each push renews.
"""

from __future__ import annotations

import json
import logging
import time

import redis

from jobs import keys

log = logging.getLogger(__name__)
MAX_ENTRIES = 1_000
TTL_SECONDS = 7 * 24 * 3600
# A poison message may be huge; what is kept of it, and what the log shows.
MAX_STORED_CHARS = 64 * 1024
HEAD_CHARS = 200


def head(raw: bytes | str | object, limit: int = HEAD_CHARS) -> str:
    """Return the start of a raw message as printable text."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw if isinstance(raw, str) else repr(raw)
    return text[:limit]


def dead_letter(client: redis.Redis, raw: bytes | str | object, kind: str, reason: str) -> None:
    """Log a message no worker can run, count it by `kind` and keep it on the dead-letter list.

    Never raises: a Redis that refuses the write (full, or gone) costs the copy, never the worker.
    """
    log.error("dead-lettered a %s message (%s): %r", kind, reason, head(raw))
    entry = json.dumps({"kind": kind, "reason": reason, "at": time.time(), "raw": head(raw, MAX_STORED_CHARS)})
    pipe = client.pipeline(transaction=False)
    pipe.hincrby(keys.STATS_POISON, kind, 1)
    pipe.lpush(keys.DEADLETTER, entry)
    pipe.ltrim(keys.DEADLETTER, 0, MAX_ENTRIES - 1)
    pipe.expire(keys.DEADLETTER, TTL_SECONDS)
    try:
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("the dead-lettered %s message was not kept: %s", kind, exc)
