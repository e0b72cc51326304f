"""Validation of a prediction request: content type, JSON, shape, size, threshold."""

from __future__ import annotations

import math
from typing import Any

import orjson
from flask import Request

from api.errors import ApiError

_NON_FINITE_LITERALS = (b"NaN", b"Infinity", b"-Infinity")


def parse_batch(request: Request, max_rows: int, max_bytes: int) -> list[dict[str, Any]]:
    """Return the request's records, one object or a list of 1 to `max_rows` objects."""
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the records as Content-Type: application/json.")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise ApiError(415, "unsupported_content_encoding", f"Content-Encoding {encoding!r} is not accepted.")
    body = _read_body(request, max_bytes)
    if not body.strip():
        raise ApiError(400, "empty_body", "The request body is empty; send a JSON object or list of objects.")
    payload = _decode(body)
    records = [payload] if isinstance(payload, dict) else payload
    if not isinstance(records, list):
        raise ApiError(422, "invalid_shape", f"Expected a JSON object or a list of objects, got {_json_type(payload)}.")
    if not records:
        raise ApiError(422, "empty_batch", "The list of records is empty.")
    if len(records) > max_rows:
        raise ApiError(413, "too_many_rows", f"At most {max_rows} records per request.", {"rows": len(records)})
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            raise ApiError(422, "invalid_record", f"Record {row} is {_json_type(record)}, not an object.", {"row": row})
    return records


def project(records: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    """Keep only the fields the model reads, so Redis and the workers carry nothing else."""
    return [{name: record[name] for name in fields if name in record} for record in records]


def _read_body(request: Request, max_bytes: int) -> bytes:
    if request.content_length is not None:  # Werkzeug has already refused a declared excess
        return request.get_data(cache=False)
    # A chunked body declares no length: read one byte past the limit to see if it is over.
    body = request.environ["wsgi.input"].read(max_bytes + 1)
    if len(body) > max_bytes:
        raise ApiError(413, "body_too_large", f"The body exceeds {max_bytes} bytes.")
    return body


def parse_threshold(raw: str | None) -> float | None:
    """Return the client's cutoff from the query string, if any, checked to lie in [0, 1]."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:
        raise ApiError(422, "invalid_threshold", "threshold must be a number between 0 and 1.", {"threshold": raw})
    return value


def _decode(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        at = exc.pos if isinstance(exc.pos, int) else 0
        if "infinity" in exc.msg or body[at:].startswith(_NON_FINITE_LITERALS):
            raise ApiError(
                422, "non_finite_number", "Numbers must be finite: NaN, Infinity and overflowing values are refused."
            ) from None
        if "depth" in exc.msg or "recursion" in exc.msg.lower():
            raise ApiError(422, "too_deeply_nested", "The JSON nests too deeply.") from None
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {exc.msg}.", {"position": at}) from None


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
