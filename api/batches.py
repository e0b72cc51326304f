"""Validation of a prediction request: content type, size, then the body, one step at a time.

The body is decoded straight into records holding only the fields the serving model reads
(msgspec skips every other field without building it), so a batch of 100-column rows costs the
API a third of what a generic JSON parse would. That one pass either succeeds, or it fails and
the body is checked again step by step (text, syntax, records, numbers), so that the error code
names the first step that fails: nothing is read out of a library's error message.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

import msgspec
from flask import Request

from api.errors import ApiError
from api.fields import ROW_NAMES, SAMPLE_BYTES, UnknownFields, mark_unknown, sample_unknown
from api.formats import header_unknown, line_error, ndjson_lines, read_csv
from api.ids import attach_ids, decoded_fields
from api.numbers import decimal, integer
from api.uploads import Format, read_upload, upload_format
from api.values import cap_values
from model_store import NAME_PATTERN

RawValue = Annotated[
    Any,
    msgspec.Meta(
        description="The value as the client has it: a number, money, a percent, a level, null... "
        "A value the model cannot read is reported in its row's result; the request is not refused."
    ),
]
_JSON_SPACE = re.compile(rb"[ \t\n\r]*")
_TEXT_SPACE = re.compile(r"[ \t\n\r]*")
_VALUE = msgspec.json.Decoder(msgspec.Raw)
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
_KEYS = msgspec.json.Decoder(dict[str, msgspec.Raw])
# A too-long id is refused at this length when no field cap is set.
MAX_ID_CHARS = 256


@functools.lru_cache(maxsize=16)
def record_type(fields: tuple[str, ...], title: str = "Record") -> type[msgspec.Struct]:
    """Return the record of a model: its input fields as raw values; other fields are skipped unread."""
    return msgspec.defstruct(
        title,
        # UNSET, not None: an absent field stays absent, and a null stays a null the worker sees.
        [(f"f{i}", RawValue, msgspec.UNSET) for i in range(len(fields))],
        rename={f"f{i}": name for i, name in enumerate(fields)},
    )


@dataclass(frozen=True)
class RecordDecoders:
    """The decoders of one model's records: one record, and a list of them."""

    fields: tuple[str, ...]
    one: msgspec.json.Decoder
    many: msgspec.json.Decoder


@functools.lru_cache(maxsize=16)
def decoders_for(fields: tuple[str, ...]) -> RecordDecoders:
    """Return the decoders that keep only `fields` of each record."""
    record = record_type(fields)
    return RecordDecoders(fields, msgspec.json.Decoder(record), msgspec.json.Decoder(list[record]))


@dataclass(frozen=True)
class Batch:
    """The records of a request, and the field names they hold that the model does not read."""

    records: list[Any]
    unknown: UnknownFields
    digest: str = ""  # SHA-256 of the body, when asked for (api.idempotency compares submissions by it)


def parse_batch(
    request: Request,
    fields: tuple[str, ...],
    max_rows: int,
    max_bytes: int,
    strict: bool = False,
    max_chars: int | None = None,
    id_field: str | None = None,
    digest: bool = False,
) -> Batch:
    """Return the request's records, 1 to `max_rows` of them in any upload format, and their unknown fields.

    With `strict`, every row's unknown field names are kept in its record, for the worker to refuse.
    A value longer than `max_chars` is replaced by a marker that its row's result reports. With
    `id_field`, each record carries that field's value as its id (api.ids). With `digest`, the batch
    carries the SHA-256 of the body as read (decompressed).
    """
    kind = upload_format(request)
    body = read_upload(request, max_bytes)
    hashed = hashlib.sha256(body).hexdigest() if digest else ""
    known = decoded_fields(fields, id_field)
    rows_unknown: list[list[str]] = []
    if kind is Format.CSV:
        records, unknown, rows_unknown = _csv_records(body, known, id_field, max_rows)
    elif kind is Format.NDJSON:
        records, unknown, rows_unknown = _ndjson_records(body, known, max_rows, strict)
    else:
        records = decode_records(body, decoders_for(known))
    if not records:
        raise ApiError(422, "empty_batch", "The list of records is empty.")
    if len(records) > max_rows:
        raise ApiError(
            413,
            "too_many_rows",
            f"At most {max_rows} records per request.",
            {"rows": len(records), "max_rows": max_rows},
        )
    if max_chars is not None:
        cap_values(records, len(fields), max_chars)
    if id_field is not None:
        records = attach_ids(records, fields, id_field, max_chars or MAX_ID_CHARS)
    if kind is Format.JSON:
        if strict:
            return Batch(*mark_unknown(body, records, known), hashed)
        return Batch(records, sample_unknown(body, known), hashed)
    if strict and unknown.count:
        records = [
            msgspec.to_builtins(record) | dict.fromkeys(names[:ROW_NAMES]) if names else record
            for record, names in zip(records, rows_unknown, strict=True)
        ]
    return Batch(records, unknown, hashed)


def _csv_records(
    body: bytes, known: tuple[str, ...], id_field: str | None, max_rows: int
) -> tuple[list[Any], UnknownFields, list[list[str]]]:
    rows, header = read_csv(body, known, max_rows)
    if id_field is not None and id_field not in header:
        raise ApiError(
            422, "unknown_id_field", f"The CSV header has no column {id_field!r} (id_field).", {"id_field": id_field}
        )
    record = record_type(known)
    unknown = header_unknown(header, known, len(rows))
    return [record(*cells) for cells in rows], unknown, [list(unknown.names)] * len(rows)


def _ndjson_records(
    body: bytes, known: tuple[str, ...], max_rows: int, strict: bool
) -> tuple[list[Any], UnknownFields, list[list[str]]]:
    decoders = decoders_for(known)
    records = []
    rows_keys = []
    sampled = 0
    for row, (line, text) in enumerate(ndjson_lines(body, max_rows)):
        if text.lstrip()[:1] != b"{":
            raise ApiError(422, "invalid_record", f"Line {line} is not a JSON object.", {"line": line, "row": row})
        try:
            records.append(decode_records(text, decoders)[0])
        except ApiError as exc:
            raise line_error(exc, line, row) from None
        if strict or sampled < SAMPLE_BYTES:
            sampled += len(text) + 1
            rows_keys.append(list(_KEYS.decode(text)))
    unknown = UnknownFields.of(rows_keys, known)
    allowed = frozenset(known)
    return records, unknown, [[key for key in keys if key not in allowed] for keys in rows_keys] if strict else []


def decode_records(body: bytes, decoders: RecordDecoders) -> list[Any]:
    """Return the records of a JSON body holding one object or a list; refuse anything else.

    One pass decodes the records. When it fails, the error names the first problem in the body, as
    that pass met it: the exception's type says which step failed, and only a record or a number that
    failed is looked for again, record by record.
    """
    start = _JSON_SPACE.match(body).end()  # type: ignore[union-attr]  # it matches the empty string too
    if start == len(body):
        raise ApiError(400, "empty_body", "The request body is empty; send a JSON object or list of objects.")
    _check_utf8(body)
    opener = body[start : start + 1]
    if opener not in (b"[", b"{"):
        _check_syntax(body)
        raise ApiError(422, "invalid_shape", "Expected a JSON object or a list of objects.")
    many = opener == b"["
    try:
        return decoders.many.decode(body) if many else [decoders.one.decode(body)]
    except msgspec.ValidationError:  # first: it is a DecodeError too
        pass  # a record or a number: find which, outside this handler
    except msgspec.DecodeError as exc:
        raise _malformed(body, exc) from None
    except RecursionError:
        raise _too_deep() from None
    _find_bad_record(body, decoders, many)


def _check_utf8(body: bytes) -> None:
    # The record decoder skips unused fields unread: check the whole body is UTF-8 first.
    if body.isascii():
        return
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        raise ApiError(400, "malformed_json", f"The body is not valid UTF-8: {exc.reason}.") from None


def _find_bad_record(body: bytes, decoders: RecordDecoders, many: bool) -> NoReturn:
    """Raise the error of the first record that is not an object or holds a number out of range."""
    for row, item in enumerate(_elements(body) if many else [body]):
        if memoryview(item)[:1] != b"{":
            raise ApiError(422, "invalid_record", f"Record {row} is not an object.", {"row": row})
        if not _decodes(decoders.one, item):
            # A model field takes any JSON value, so the only value that fails is a number out of range.
            field = next(name for name in decoders.fields if not _decodes(_field_decoder(name), item))
            raise _non_finite({"row": row, "field": field} if many else {"field": field})
    raise AssertionError("every record decodes alone but the list did not")


def _elements(body: bytes) -> Iterator[Any]:
    """Yield the elements of a JSON list in order, up to the first one that is not an object."""
    try:
        items = _ITEMS.decode(body)
    except (msgspec.DecodeError, RecursionError):
        # The list breaks further on (a bad element was met first): walk it with the standard parser,
        # which returns where each object ends. What follows the bad element is never read.
        yield from _walk(body.decode())
    else:
        yield from items


def _walk(text: str) -> Iterator[bytes]:
    at = _TEXT_SPACE.match(text, text.index("[") + 1).end()  # type: ignore[union-attr]
    while text[at : at + 1] not in ("]", ""):
        if text[at] != "{":
            yield text[at].encode()
            return
        start = at
        try:
            _, at = _SKIP.raw_decode(text, start)
        except (ValueError, RecursionError):
            yield text[start:].encode()  # it breaks after the number that failed: the decoders stop there first
            return
        yield text[start:at].encode()
        at = _TEXT_SPACE.match(text, at).end()  # type: ignore[union-attr]
        if text[at : at + 1] == ",":
            at = _TEXT_SPACE.match(text, at + 1).end()  # type: ignore[union-attr]


def _check_syntax(body: bytes) -> None:
    try:
        _VALUE.decode(body)
    except msgspec.DecodeError as exc:
        raise _malformed(body, exc) from None
    except RecursionError:
        raise _too_deep() from None


def _too_deep() -> ApiError:
    return ApiError(422, "too_deeply_nested", "The JSON nests too deeply.")


def _malformed(body: bytes, exc: msgspec.DecodeError) -> ApiError:
    if (b"NaN" in body or b"Infinity" in body) and _has_non_finite_literal(body):
        return _non_finite()
    return ApiError(400, "malformed_json", f"The body is not valid JSON: {exc}.")


class _NonFiniteError(Exception):
    pass


def _refuse(constant: str) -> None:
    raise _NonFiniteError(constant)


def _ignore(value: object) -> None:
    return None


# Reads JSON only to find where each value ends: objects and numbers are dropped as soon as they are read.
_SKIP = json.JSONDecoder(object_pairs_hook=_ignore, parse_float=_ignore, parse_int=_ignore, parse_constant=_ignore)


def _has_non_finite_literal(body: bytes) -> bool:
    """Tell whether malformed JSON is malformed by a NaN or Infinity: the standard parser accepts those."""
    try:
        # Objects and numbers are dropped as soon as they are read, so memory stays flat.
        json.loads(body, parse_constant=_refuse, object_pairs_hook=_ignore, parse_float=_ignore, parse_int=_ignore)
    except _NonFiniteError:
        return True
    except (ValueError, RecursionError):
        return False
    return False


def _decodes(decoder: msgspec.json.Decoder, item: Any) -> bool:
    try:
        decoder.decode(item)
    except msgspec.ValidationError:
        return False
    except msgspec.DecodeError:
        return True  # the text breaks after this value, and that is not this step's to report
    return True


@functools.lru_cache(maxsize=256)
def _field_decoder(name: str) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(msgspec.defstruct("Field", [("f", RawValue, msgspec.UNSET)], rename={"f": name}))


def parse_threshold(raw: str | None) -> float | None:
    """Return the client's cutoff from the query string, if any, checked to lie in [0, 1]."""
    if raw is None:
        return None
    value = decimal(raw)
    if value is None or not 0.0 <= value <= 1.0:
        raise ApiError(422, "invalid_threshold", "threshold must be a number between 0 and 1.", {"threshold": raw})
    return value


def parse_strict(raw: str | None) -> bool:
    """Return whether the client asks for unknown fields to be row errors (`?strict=true`)."""
    if raw is None or raw.lower() in ("false", "0"):
        return False
    if raw.lower() in ("true", "1"):
        return True
    raise ApiError(422, "invalid_strict", "strict must be true or false.", {"strict": raw})


def parse_version(raw: str | None) -> int | None:
    """Return the model version a client pins in the query string, if any, checked to be a whole number."""
    if raw is None:
        return None
    value = integer(raw)
    if value is None or value < 1:
        raise ApiError(422, "invalid_version", "version must be a whole number of at least 1.", {"version": raw})
    return value


_MODEL_NAME = re.compile(NAME_PATTERN)


def parse_model_name(raw: str | None) -> str | None:
    """Return the model a client names in the query string, if any, checked to be a plain name."""
    if raw is None:
        return None
    if not _MODEL_NAME.fullmatch(raw):
        raise ApiError(
            422, "invalid_model", "model must be a name of letters, digits, '.', '_' or '-'.", {"model": raw}
        )
    return raw


def parse_page(offset: str | None, limit: str | None) -> tuple[int, int | None] | None:
    """Return the (offset, limit) of the results a status request asks for; None asks for all of them."""
    if offset is None and limit is None:
        return None
    return _count("offset", offset, minimum=0) or 0, _count("limit", limit, minimum=1)


def _count(name: str, raw: str | None, minimum: int) -> int | None:
    if raw is None:
        return None
    value = integer(raw)
    if value is None or value < minimum:
        raise ApiError(422, "invalid_page", f"{name} must be a whole number of at least {minimum}.", {name: raw})
    return value


def _non_finite(details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(
        422, "non_finite_number", "Numbers must be finite: NaN, Infinity and overflowing values are refused.", details
    )
