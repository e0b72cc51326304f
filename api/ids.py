"""Row IDs (`?id_field=<name>`): the raw value of a field the client names, echoed as `id` in each result row.

The API stores it in each record under `ID_KEY`, a name no client field can take for the model,
and the worker copies it into the row's result, error rows included (training.scoring). A row
without the field gets null. The field need not be one the model reads.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import msgspec
from msgspec import UNSET

from api.errors import ApiError

# The key training.scoring reads; the API does not import it, since training brings in numpy.
ID_KEY = "$id"
MAX_ID_FIELD_CHARS = 256
# The record decoder reads the id field by name, and cannot be given a name holding these.
_UNNAMEABLE = re.compile(r'[\x00-\x1f"\\]')


def parse_id_field(raw: str | None) -> str | None:
    """Return the field a client names in `?id_field=`, if any: a non-empty name of at most 256 characters."""
    if raw is None:
        return None
    if not raw or len(raw) > MAX_ID_FIELD_CHARS or _UNNAMEABLE.search(raw):
        raise ApiError(
            422, "invalid_id_field",
            f"id_field must be a field name of 1 to {MAX_ID_FIELD_CHARS} characters, without control characters, "
            "quotes or backslashes.",
            {"id_field": raw[:MAX_ID_FIELD_CHARS]},
        )  # fmt: skip
    return raw


@functools.lru_cache(maxsize=16)
def stored_type(fields: tuple[str, ...]) -> type[msgspec.Struct]:
    """Return the record as stored with an id: the model's fields, then the id under ID_KEY."""
    names = [f"f{i}" for i in range(len(fields))]
    return msgspec.defstruct(
        "StoredRecord",
        [(name, Any, UNSET) for name in names] + [("id", Any, None)],
        rename={**dict(zip(names, fields, strict=True)), "id": ID_KEY},
    )


def decoded_fields(fields: tuple[str, ...], id_field: str | None) -> tuple[str, ...]:
    """Return the fields to decode from each record: the model's, and the id field when it is not one of them."""
    return fields if id_field is None or id_field in fields else (*fields, id_field)


def attach_ids(records: list[Any], fields: tuple[str, ...], id_field: str, max_chars: int) -> list[Any]:
    """Return records decoded with `decoded_fields` as stored records, each carrying its id (null when absent)."""
    stored = stored_type(fields)
    n = len(fields)
    at = fields.index(id_field) if id_field in fields else n
    out = []
    for row, record in enumerate(records):
        values = msgspec.structs.astuple(record)
        value = values[at]
        if value is UNSET:
            value = None
        else:
            check_id(value, row, max_chars)
        out.append(stored(*values[:n], value))
    return out


def check_id(value: Any, row: int, max_chars: int) -> None:
    """Refuse an id longer than `max_chars` characters (a nested one is measured as JSON)."""
    kind = type(value)
    if kind is str:
        size = len(value)
    elif kind is list or kind is dict:
        size = len(msgspec.json.encode(value))
    else:
        return
    if size > max_chars:
        raise ApiError(
            422, "invalid_id", f"The id of row {row} is longer than {max_chars} characters.",
            {"row": row, "max_chars": max_chars},
        )  # fmt: skip
