"""Over-long values: a model field's value past MAX_FIELD_CHARS is not stored, and its row gets an error.

The value is replaced, in its place, by a marker that the worker's parser reports for that row and
field (`training.parsing.TOO_LONG`), so the rest of the batch is still scored and the bad row is
reported where it stood. The marker is a JSON object, a type that no model field accepts, so the
row fails whatever the field.
"""

from __future__ import annotations

from typing import Any

import msgspec

# The key training.parsing looks for; the API does not import it, since training brings in numpy.
TOO_LONG = "$too_long"


def cap_values(records: list[Any], fields: int, max_chars: int) -> int:
    """Replace every value longer than `max_chars` characters with the marker; return how many were."""
    names = [f"f{i}" for i in range(fields)]
    marker = {TOO_LONG: max_chars}
    replaced = 0
    for record in records:
        for name in names:
            value = getattr(record, name)
            kind = type(value)
            if kind is str:
                too_long = len(value) > max_chars
            elif kind is list or kind is dict:  # a nested value is measured as the JSON it came as
                too_long = len(msgspec.json.encode(value)) > max_chars
            else:
                continue
            if too_long:
                setattr(record, name, marker)
                replaced += 1
    return replaced
