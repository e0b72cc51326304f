"""A job's events, read from its Redis stream (`keys.events`): the Lua scripts that record chunks and end jobs add them.

Each chunk recorded adds `progress` (rows_done, rows); the job's end adds one `succeeded` or `failed`,
always the last entry. Entry ids are Redis stream ids ("<ms>-<seq>"), increasing, so a reader that
remembers the last id it saw resumes with nothing missed. The stream keeps its newest
`store.MAX_EVENTS` entries and expires with the job's keys.
"""

from __future__ import annotations

from typing import NamedTuple

import redis

from jobs import keys

PROGRESS = "progress"
FINAL = frozenset({"succeeded", "failed"})


class Event(NamedTuple):
    """One entry of a job's stream; `rows_done` and `rows` are set on `progress` only."""

    id: str
    type: str
    rows_done: int = 0
    rows: int = 0

    @property
    def final(self) -> bool:
        return self.type in FINAL


def read_events(
    client: redis.Redis, job_id: str, after: str = "0-0", block_ms: int | None = None, count: int = 200
) -> list[Event]:
    """Return up to `count` events of a job after the entry id `after`, oldest first.

    With `block_ms`, wait up to that long for one when there is none yet (`client`'s socket timeout must exceed it).
    """
    replies = client.xread({keys.events(job_id): after}, count=count, block=block_ms)
    if not replies:
        return []
    (_, entries), *_ = replies
    return [_event(entry_id.decode(), fields) for entry_id, fields in entries]


def _event(entry_id: str, fields: dict[bytes, bytes]) -> Event:
    kind = fields.get(b"type", b"").decode()
    if kind != PROGRESS:
        return Event(entry_id, kind)
    return Event(entry_id, kind, int(fields.get(b"rows_done", 0)), int(fields.get(b"rows", 0)))
