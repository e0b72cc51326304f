"""Field names a request holds beyond the model's input fields: warnings, or row errors with `?strict=true`.

The record decoder skips unknown fields without telling, so their names are read in a second,
cheap pass. For warnings, that pass reads the keys of the rows in the body's first
`SAMPLE_BYTES` only (at least one row): a constant cost whatever the batch size, and a client's
misspelling is in every row, so the first rows show it. `?strict=true` needs every row's keys:
one pass with a decoder that refuses unknown fields tells whether any row has one, and only then
are the rows read one by one to name them (that costs several times the decode, and only then).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

MAX_NAMES = 20
SAMPLE_BYTES = 256 * 1024
# Unknown names kept per row with ?strict=true: enough for its error to name them, few enough to stay cheap.
ROW_NAMES = 5
_KEYS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])


@dataclass(frozen=True)
class UnknownFields:
    """Field names seen that the model does not read: the first `MAX_NAMES` in order seen, and how many in all."""

    names: tuple[str, ...] = ()
    count: int = 0
    rows_read: int = 0

    @classmethod
    def of(cls, rows_keys: Sequence[Sequence[str]], fields: tuple[str, ...]) -> UnknownFields:
        """Return the unknown names among the keys of some rows."""
        known = frozenset(fields)
        seen = dict.fromkeys(key for keys in rows_keys for key in keys if key not in known)
        return cls(tuple(list(seen)[:MAX_NAMES]), len(seen), len(rows_keys))


def sample_unknown(body: bytes, fields: tuple[str, ...]) -> UnknownFields:
    """Return the unknown field names of the rows that start in the body's first `SAMPLE_BYTES`."""
    many = body.lstrip()[:1] == b"["
    if not many:
        return UnknownFields.of([list(_KEYS.decode(body))], fields)
    text = body[:SAMPLE_BYTES].decode("utf-8", errors="ignore")  # a character cut at the end is in a row not read
    rows = list(_object_keys(text))
    if not rows:  # the first row alone is longer than the sample
        rows = [list(_KEYS.decode(_ITEMS.decode(body)[0]))]
    return UnknownFields.of(rows, fields)


def _pairs(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    return pairs


def _ignore(value: object) -> None:
    return None


# Only the top-level keys are kept: numbers are not built, and nested objects stay lists of pairs.
_OBJECTS = json.JSONDecoder(object_pairs_hook=_pairs, parse_float=_ignore, parse_int=_ignore, parse_constant=_ignore)


def _object_keys(text: str) -> Iterator[list[str]]:
    """Yield the keys of each complete object of a JSON list's beginning; stop where the text is cut."""
    at = text.index("[") + 1
    while True:
        at = _skip(text, at)
        if text[at : at + 1] != "{":
            return
        try:
            pairs, at = _OBJECTS.raw_decode(text, at)
        except (ValueError, RecursionError):
            return
        yield [key for key, _ in pairs]


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\n\r,":
        at += 1
    return at


@functools.lru_cache(maxsize=16)
def _closed_list(fields: tuple[str, ...]) -> msgspec.json.Decoder:
    record = msgspec.defstruct(
        "ClosedRecord", [(f"f{i}", Any, msgspec.UNSET) for i in range(len(fields))],
        rename={f"f{i}": name for i, name in enumerate(fields)}, forbid_unknown_fields=True,
    )  # fmt: skip
    return msgspec.json.Decoder(list[record] | record)  # type: ignore[valid-type]


def mark_unknown(body: bytes, records: list[Any], fields: tuple[str, ...]) -> tuple[list[Any], UnknownFields]:
    """Return the records with the names of their unknown fields kept (as null values), and those names.

    For `?strict=true`: the worker makes a row error of every field a record holds that the model does not read.
    """
    try:
        _closed_list(fields).decode(body)
    except msgspec.ValidationError:
        pass  # some row holds a field the model does not read: find which rows, below
    else:
        return records, UnknownFields(rows_read=len(records))
    items = _ITEMS.decode(body) if body.lstrip()[:1] == b"[" else [body]
    known = frozenset(fields)
    rows_keys = [list(_KEYS.decode(item)) for item in items]
    marked: list[Any] = list(records)
    for row, keys in enumerate(rows_keys):
        unknown = [key for key in keys if key not in known][:ROW_NAMES]
        if unknown:
            marked[row] = msgspec.to_builtins(records[row]) | dict.fromkeys(unknown)
    return marked, UnknownFields.of(rows_keys, fields)
