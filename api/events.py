"""Server-Sent Events: GET /tasks/<id>/events streams a job's progress, then its final status, from Redis.

The events are the entries of the job's Redis stream (jobs.events), so any API process serves any
job: a `progress` event (rows_done, rows) for each chunk or micro-batch recorded, then one
`succeeded` or `failed` event whose data is the job's status without results (a cancelled job's is
`failed` with the code job_cancelled), and the stream ends. Each event's id is its stream entry's
id: a client that reconnects with `Last-Event-ID` gets every event after it. While nothing happens,
a comment line every KEEPALIVE_SECONDS keeps proxies from closing the connection.

A stream holds a greenlet and a Redis connection (a blocked XREAD) for as long as its job runs, so
their number per process is bounded (MAX_STREAMS), as `?wait=` waiters are (api/waiting.py); past
the bound a request is refused with 503 and Retry-After.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import msgspec
import redis
from flask import Blueprint, Response, request

from api import auth
from api.auth import own_job
from api.errors import ApiError
from api.params import takes
from api.schemas import Progress, Task
from api.services import services
from jobs import JobStore
from jobs.events import PROGRESS, Event, read_events

KEEPALIVE_SECONDS = 15
RETRY_AFTER_SECONDS = 5
# A browser's EventSource waits this long before it reconnects (the SSE `retry` field).
RECONNECT_MS = 2_000
_ENTRY_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")

bp = Blueprint("events", __name__)
bp.before_request(auth.guard)


def parse_last_event_id(raw: str | None) -> str | None:
    """Return the stream entry id a client resumes after (`Last-Event-ID`), or None to start at the beginning."""
    if raw is None or not raw.strip():
        return None
    if not _ENTRY_ID.fullmatch(raw.strip()):
        raise ApiError(400, "invalid_last_event_id", "Last-Event-ID must be the id of an event of this stream.")
    return raw.strip()


@bp.get("/tasks/<task_id>/events")
@takes()
def events(task_id: str) -> Response:
    """Stream a job's progress events, then its final status, as text/event-stream."""
    svc = services()
    job = own_job(task_id)
    after = parse_last_event_id(request.headers.get("Last-Event-ID"))
    streams = svc.streams
    if not streams.take():
        raise ApiError(
            503, "too_many_streams", "Too many event streams are open on this server; retry shortly, or poll.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )  # fmt: skip
    released = threading.Event()

    def give_back() -> None:
        if not released.is_set():
            released.set()
            streams.give_back()

    try:
        pending = read_events(streams.client, task_id, after or "0-0")
        if after is not None and not pending and job.status.terminal:
            give_back()
            return Response(status=204)  # the client saw the final event: an EventSource stops reconnecting
    except BaseException:
        give_back()
        raise
    response = Response(
        _stream(svc.jobs, streams.client, task_id, after or "0-0", pending),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(give_back)  # whether the stream ended, the client left, or it never started
    return response


def _stream(jobs: JobStore, client: redis.Redis, job_id: str, after: str, pending: list[Event]) -> Iterator[bytes]:
    yield f"retry: {RECONNECT_MS}\n\n".encode()  # sends the headers now, before the first event
    while True:
        for event in pending:
            after = event.id
            if event.type == PROGRESS:
                yield _message(event.id, PROGRESS, msgspec.json.encode(Progress(event.rows_done, event.rows)))
                continue
            job = jobs.get(job_id)
            if job is not None:
                yield _message(event.id, event.type, msgspec.json.encode(Task.from_job(job)))
            return
        pending = read_events(client, job_id, after, block_ms=int(KEEPALIVE_SECONDS * 1000))
        if pending:
            continue
        job = jobs.get(job_id)
        if job is None:
            return  # expired meanwhile
        if job.status.terminal:
            pending = read_events(client, job_id, after)  # its final event may have come just after the read
            if pending:
                continue
            # Ended without a final event in its stream (a job older than the streams): say so anyway.
            yield _message(None, job.status.value, msgspec.json.encode(Task.from_job(job)))
            return
        yield b": keep-alive\n\n"


def _message(event_id: str | None, event: str, data: bytes) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + data + b"\n\n"
