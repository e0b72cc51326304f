"""A job's Server-Sent Events (GET /tasks/<id>/events), parsed from the lines of the stream as they arrive."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

PROGRESS = "progress"
FINAL = frozenset({"succeeded", "failed"})


@dataclass(frozen=True)
class Event:
    """One event: its id (to resume after), its type, and its data as JSON."""

    id: str | None
    type: str
    data: Any

    @property
    def final(self) -> bool:
        return self.type in FINAL


def parse_events(lines: Iterable[str]) -> Iterator[Event | None]:
    """Yield each event of an event stream's lines, and None for each comment (a keep-alive).

    Fields as the SSE format has them: `id`, `event`, one or more `data` lines; `retry` and unknown ones are ignored.
    """
    event_id: str | None = None
    kind = ""
    data: list[str] = []
    for line in lines:
        if line.startswith(":"):
            yield None
            continue
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                event_id = value
            elif name == "event":
                kind = value
            elif name == "data":
                data.append(value)
            continue
        if data:
            yield Event(event_id, kind or "message", json.loads("\n".join(data)))
        kind, data = "", []
