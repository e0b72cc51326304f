"""Streamed downloads of a finished job's results, as JSON, NDJSON or CSV, one stored chunk at a time.

A cancelled job's download holds the chunks scored before the cancel, and a `cancelled` error row
in place of each row of the others, read the way GET /tasks/<id> reads them (`JobStore.results`).

The workers store each chunk's results as a JSON array. A download reads one chunk, writes it out
in the format asked for and reads the next, so the API holds one chunk (5,000 rows by default)
whatever the job's size. JSON and NDJSON are spliced from the stored bytes without decoding a
value; CSV decodes a slice of rows at a time and writes each float with `repr`, which gives back
the same double, so scores agree bit for bit across the three formats.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from enum import StrEnum
from typing import Any

import msgspec

from api.results import Columns
from jobs import Job, JobStore

_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
_ROW = msgspec.json.Decoder(dict[str, Any])
# Rows of a chunk written at once: the rest of the chunk stays as its stored bytes meanwhile.
SLICE_ROWS = 500
PIECE_BYTES = 256 * 1024


class ResultFormat(StrEnum):
    """The formats a download may take, by media type."""

    JSON = "application/json"
    NDJSON = "application/x-ndjson"
    CSV = "text/csv"

    @property
    def content_type(self) -> str:
        return "text/csv; charset=utf-8" if self is ResultFormat.CSV else self.value


class ExpiredError(Exception):
    """A chunk of results expired while the download was under way."""


def etag(job: Job, kind: ResultFormat) -> str:
    """Return the entity tag of a finished job's results in one format: they never change once written."""
    return f"{job.id}.{kind.name.lower()}.{job.finished_at}"


def stream(
    jobs: JobStore, job: Job, kind: ResultFormat, columns: Columns, unscored: Callable[[int], bytes] | None = None
) -> Iterator[bytes]:
    """Yield the job's results in `kind`, reading one stored chunk at a time.

    With `unscored`, a chunk without results gives `unscored(row)` for each of its rows (see `JobStore.results`).
    """
    chunks = _chunks(jobs, job, unscored)
    if kind is ResultFormat.JSON:
        yield from _json(chunks)
    elif kind is ResultFormat.NDJSON:
        for part in chunks:
            rows = _ITEMS.decode(part)  # each row a view into `part`, not a copy
            for start in range(0, len(rows), SLICE_ROWS):
                yield b"\n".join(rows[start : start + SLICE_ROWS]) + b"\n"
    else:
        yield from _csv(chunks, columns)


def _chunks(jobs: JobStore, job: Job, unscored: Callable[[int], bytes] | None) -> Iterator[bytes]:
    for chunk in range(job.chunks):
        if unscored is None:
            part = jobs.result_chunk(job.id, chunk)
        else:
            rows = range(chunk * job.chunk_rows, (chunk + 1) * job.chunk_rows)
            part = jobs.results(job.id, job.rows, job.chunk_rows, rows, unscored)
        if part is None:
            raise ExpiredError(f"chunk {chunk} of job {job.id} expired during its download")
        yield part


def _json(chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield b"["
    first = True
    for part in chunks:
        inner = memoryview(part)[1:-1]
        if not inner:
            continue
        if not first:
            yield b","
        first = False
        # Written in pieces: each is copied on its way out, and a piece costs less than the whole chunk.
        for start in range(0, len(inner), PIECE_BYTES):
            yield bytes(inner[start : start + PIECE_BYTES])
    yield b"]\n"


def _csv(chunks: Iterator[bytes], columns: Columns) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns.names)
    yield _take(out)
    blank = [""] * len(columns.variables)
    for part in chunks:
        rows = _ITEMS.decode(part)
        for start in range(0, len(rows), SLICE_ROWS):
            for raw in rows[start : start + SLICE_ROWS]:
                row = _ROW.decode(raw)
                cells: list[Any] = []
                for key in columns.keys:
                    value = row.get(key)
                    if key == "contributions":
                        cells += blank if value is None else [value[name] for name in columns.variables]
                    elif key == "error":
                        cells += ("", "") if value is None else (value.get("field", ""), value.get("message", ""))
                    else:
                        cells.append(_cell(value))
                writer.writerow(cells)
            yield _take(out)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return msgspec.json.encode(value).decode()
    return value  # str, int, float: csv writes a float with repr, which reads back as the same double


def _take(out: io.StringIO) -> bytes:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text.encode()
