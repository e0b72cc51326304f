"""Raw value parsing: JSON records as clients send them, to typed columns.

Every function here is vectorised over one column of a batch, so one row
parses exactly as it does inside a batch of 100,000.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

MISSING_TOKENS = ("", "nan", "null", "none", "na", "n/a")
# The API stores {TOO_LONG: n} in place of a value longer than n characters (api/values.py).
TOO_LONG = "$too_long"
_PLAIN_NUMBER_TYPES = frozenset({float, int, type(None)})
# Money and percent decorations; "(" becomes a minus sign, as accounting writes negatives.
_UNDECORATE = str.maketrans({"$": None, ",": None, ")": None, "%": None, " ": None, "(": "-"})


@dataclass(frozen=True)
class FieldError:
    """A value of one row that could not be parsed."""

    row: int
    field: str
    message: str


Records = Sequence[Mapping[str, Any]]


def column_values(records: Records | pd.DataFrame, name: str) -> list[Any]:
    """Return one field of every record, None where absent."""
    if isinstance(records, pd.DataFrame):
        if name not in records.columns:
            return [None] * len(records)
        return records[name].tolist()
    return [record.get(name) for record in records]


def parse_numbers(raw: Sequence[Any]) -> tuple[np.ndarray, dict[int, str]]:
    """Parse numbers, money ('($5,032.58)') and percents ('62.59%'); NaN where missing.

    Returns the values and, for each row that held something unparseable, a message.
    """
    kinds = set(map(type, raw))
    values = None
    if kinds <= _PLAIN_NUMBER_TYPES:
        with contextlib.suppress(OverflowError):  # an integer beyond float range
            values, errors = np.array(raw, dtype=float), {}
    if values is None:
        values, errors = _parse_texts(raw, kinds)
    for row in np.flatnonzero(np.isinf(values)):
        errors[int(row)] = "not a finite number"
        values[row] = np.nan
    return values, errors


def _parse_texts(raw: Sequence[Any], kinds: set[type]) -> tuple[np.ndarray, dict[int, str]]:
    errors: dict[int, str] = {}
    if kinds <= {str, type(None)}:
        texts = ["" if value is None else value for value in raw]
    else:
        texts = []
        for row, value in enumerate(raw):
            kind = type(value)
            if kind is str:
                texts.append(value)
            elif kind is float or kind is int:
                texts.append(_number_text(value))
            else:
                if value is not None:
                    errors[row] = _too_long(value) or f"expected a number, got {_json_type(value)}"
                texts.append("")
    values, failed = _parse_decorated(texts)
    for row in failed:
        if row not in errors and texts[row].strip().lower() not in MISSING_TOKENS:
            errors[row] = f"cannot parse {_preview(texts[row])!r} as a number"
    return values, errors


def _number_text(value: float | int) -> str:
    try:
        return repr(float(value))
    except OverflowError:
        return "inf"


def _parse_decorated(texts: list[str]) -> tuple[np.ndarray, list[int]]:
    """Parse '$6,882.34 ', '($5,032.58)' and '62.59%'; return values and the failed positions."""
    # One translate over the joined column runs at C speed; the split restores the rows
    # unless a value held the separator itself, in which case go value by value.
    cleaned = "\n".join(texts).translate(_UNDECORATE).split("\n")
    if len(cleaned) != len(texts):
        cleaned = [text.translate(_UNDECORATE) for text in texts]
    values = np.array(pd.to_numeric(pd.Series(cleaned, dtype=object), errors="coerce"), dtype=float)
    return values, np.flatnonzero(np.isnan(values)).tolist()


def parse_levels(raw: Sequence[Any]) -> tuple[np.ndarray, dict[int, str]]:
    """Parse categorical levels: stripped strings, None where missing.

    Work is done once per distinct value, since a batch holds few of them.
    """
    try:
        distinct = set(raw)
    except TypeError:  # an unhashable value, e.g. a nested object
        distinct = None
    if distinct is not None:
        mapping = {value: _normalize_level(value) for value in distinct}
        if all(mapping[value] is value for value in distinct):
            return np.array(raw, dtype=object), {}
        if all(not isinstance(level, _BadLevel) for level in mapping.values()):
            return np.array([mapping[value] for value in raw], dtype=object), {}
    levels = [_normalize_level(value) for value in raw]
    errors = {row: level.message for row, level in enumerate(levels) if isinstance(level, _BadLevel)}
    return np.array([None if row in errors else lv for row, lv in enumerate(levels)], dtype=object), errors


class _BadLevel:
    def __init__(self, message: str) -> None:
        self.message = message


def _normalize_level(value: Any) -> str | _BadLevel | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if not isinstance(value, str):
        return _BadLevel(_too_long(value) or f"expected a string, got {_json_type(value)}")
    text = value.strip()
    if text.lower() in MISSING_TOKENS:
        return None
    return value if text == value else text


def _too_long(value: object) -> str | None:
    """Return the message of the API's marker for a value it did not store, if `value` is one."""
    if type(value) is dict and len(value) == 1 and type(value.get(TOO_LONG)) is int:
        return f"longer than {value[TOO_LONG]} characters"
    return None


def _json_type(value: object) -> str:
    names = {bool: "boolean", dict: "object", list: "array", str: "string"}
    return names.get(type(value), type(value).__name__)


def _preview(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class RecordParser(TransformerMixin, BaseEstimator):
    """Turn raw records into a frame of numeric floats and categorical strings.

    Only the named fields are read; anything else a record carries is ignored.
    """

    def __init__(self, numeric: Sequence[str] = (), categorical: Sequence[str] = ()) -> None:
        self.numeric = numeric
        self.categorical = categorical

    def fit(self, records: Records | pd.DataFrame, y: object = None) -> RecordParser:
        """Parsing learns nothing from data; fit only marks the step as ready."""
        self.n_fields_ = len(self.numeric) + len(self.categorical)
        return self

    def transform(self, records: Records | pd.DataFrame) -> pd.DataFrame:
        """Parse records; an unparseable value counts as missing."""
        frame, _ = self.parse(records)
        return frame

    def parse(self, records: Records | pd.DataFrame) -> tuple[pd.DataFrame, list[FieldError]]:
        """Parse records and return the frame with every field error found."""
        columns: dict[str, np.ndarray] = {}
        errors: list[FieldError] = []
        for names, parse in ((self.numeric, parse_numbers), (self.categorical, parse_levels)):
            for name in names:
                columns[name], bad = parse(column_values(records, name))
                errors.extend(FieldError(row, name, msg) for row, msg in bad.items())
        errors.sort(key=lambda error: error.row)
        return pd.DataFrame(columns, copy=False), errors

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Name the parsed columns."""
        return np.array([*self.numeric, *self.categorical], dtype=object)
