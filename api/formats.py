"""CSV and NDJSON uploads, read into the same records as a JSON body, with errors that name the line.

- CSV (RFC 4180): a header row, UTF-8 with an optional BOM; an empty cell is a missing value. Cells
  are kept as the text they are (the worker parses money, percents and numbers from text as it does
  from JSON strings), and only the model's fields and the id field are kept of each row.
- NDJSON: one JSON object per line; blank lines are skipped. Each line is decoded straight into
  a record, as one element of a JSON list would be.

Rows are numbered from 0 over the data rows, as in a JSON list; a line number counts every
physical line from 1 (the CSV header is line 1). Before any parsing, no line may be longer than
`MAX_LINE_BYTES`, so no single row, cell or line can make the parser build something huge.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from typing import Any

from msgspec import UNSET

from api.errors import ApiError
from api.fields import MAX_NAMES, UnknownFields

MAX_LINE_BYTES = 1024 * 1024
MAX_COLUMNS = 1024
_SPACE = b" \t\r"


def check_lines(body: bytes, what: str) -> None:
    """Refuse a body with a line longer than about MAX_LINE_BYTES (up to twice that passes), or a NUL byte."""
    nul = body.find(b"\0")
    if nul >= 0:
        raise _malformed(what, _line_at(body, nul), "it holds a NUL byte")
    for start in range(0, len(body), MAX_LINE_BYTES):
        stop = start + MAX_LINE_BYTES
        if stop < len(body) and body.find(b"\n", start, stop) < 0 and body.find(b"\r", start, stop) < 0:
            line = _line_at(body, start)
            raise ApiError(
                422, "line_too_long", f"Line {line} is longer than {MAX_LINE_BYTES} bytes.",
                {"line": line, "max_line_bytes": MAX_LINE_BYTES},
            )  # fmt: skip


def read_csv(body: bytes, wanted: tuple[str, ...], max_rows: int) -> tuple[list[list[Any]], list[str]]:
    """Return, for each data row, its cells of the `wanted` fields (UNSET where empty or absent), and the header.

    Refuse broken quoting, a ragged row, bad UTF-8 and more than `max_rows` rows, naming the line.
    """
    if body.startswith(codecs.BOM_UTF8):
        body = body[len(codecs.BOM_UTF8) :]
    if not body.strip():
        raise ApiError(400, "empty_body", "The request body is empty; send a header row and rows.")
    check_lines(body, "CSV")
    if body.lstrip()[:1] in (b"[", b"{"):
        raise _malformed("CSV", 1, "it looks like JSON; send JSON as application/json or application/x-ndjson")
    text = _text(body, "CSV")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    del text
    header = _header(reader)
    at = {name: column for column, name in enumerate(header)}
    columns = [at.get(name) for name in wanted]
    rows: list[list[Any]] = []
    try:
        for cells in reader:
            if not cells:
                continue  # a blank line
            if len(cells) != len(header):
                raise _malformed(
                    "CSV", reader.line_num, f"it has {len(cells)} fields where the header has {len(header)}"
                )
            if len(rows) == max_rows:
                raise _too_many(max_rows)
            rows.append([UNSET if column is None or not cells[column] else cells[column] for column in columns])
    except csv.Error as exc:
        raise _malformed("CSV", reader.line_num, str(exc)) from None
    if not rows:
        raise ApiError(422, "empty_batch", "The CSV has a header but no rows.")
    return rows, header


def _header(reader: Any) -> list[str]:
    try:
        header = next(reader)
    except csv.Error as exc:
        raise _malformed("CSV", reader.line_num, str(exc)) from None
    if len(header) > MAX_COLUMNS:
        raise ApiError(
            422, "too_many_columns", f"The CSV has {len(header)} columns; at most {MAX_COLUMNS} are read.",
            {"columns": len(header), "max_columns": MAX_COLUMNS},
        )  # fmt: skip
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise _malformed("CSV", 1, f"the header names the column {name[:100]!r} twice")
        seen.add(name)
    return header


def header_unknown(header: list[str], known: tuple[str, ...], rows: int) -> UnknownFields:
    """Return the columns of a CSV header that are not among `known`: every row holds them all."""
    names = [name for name in header if name not in frozenset(known)]
    return UnknownFields(tuple(names[:MAX_NAMES]), len(names), rows)


def ndjson_lines(body: bytes, max_rows: int) -> Iterator[tuple[int, bytes]]:
    """Yield the (line number, text) of each non-blank line; refuse NUL, bad UTF-8 and more than `max_rows`."""
    if not body.strip():
        raise ApiError(400, "empty_body", "The request body is empty; send one JSON object per line.")
    check_lines(body, "NDJSON")
    if not body.isascii():
        _text(body, "NDJSON")  # the decoder skips unused fields unread: check the whole body is UTF-8 first
    start, line, rows = 0, 0, 0
    while start <= len(body):
        stop = body.find(b"\n", start)
        stop = len(body) if stop < 0 else stop
        line += 1
        text = body[start:stop]
        if text.strip(_SPACE):
            if rows == max_rows:
                raise _too_many(max_rows)
            rows += 1
            yield line, text
        start = stop + 1


def _text(body: bytes, what: str) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError as exc:
        raise _malformed(what, _line_at(body, exc.start), f"it is not valid UTF-8 ({exc.reason})") from None


def _line_at(body: bytes, offset: int) -> int:
    # A line ends with \n, \r\n or a lone \r, as the CSV reader takes them.
    return body.count(b"\n", 0, offset) + body.count(b"\r", 0, offset) - body.count(b"\r\n", 0, offset) + 1


def _malformed(what: str, line: int, why: str) -> ApiError:
    code = "malformed_csv" if what == "CSV" else "malformed_ndjson"
    return ApiError(400, code, f"The {what} is malformed at line {line}: {why}.", {"line": line})


def line_error(error: ApiError, line: int, row: int) -> ApiError:
    """Return a JSON error met on one NDJSON line, naming that line and row."""
    code = "malformed_ndjson" if error.code == "malformed_json" else error.code
    details = {**(error.details or {}), "line": line, "row": row}
    return ApiError(error.status, code, f"Line {line}: {error.message}", details)


def _too_many(max_rows: int) -> ApiError:
    return ApiError(413, "too_many_rows", f"At most {max_rows} records per request.", {"max_rows": max_rows})
