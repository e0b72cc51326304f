"""Records in from CSV or JSON files; results out as CSV, JSON or JSON lines.

CSV values are kept as the raw strings they are ('$6,882.34 ', '($5,032.58)', '62.59%'):
the service parses them exactly as it parsed the training data.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from client.errors import InputError

LABEL_COLUMN = "y"
RESULT_HEAD = ("row", "business_outcome", "phat")
ERROR_COLUMNS = ("error_field", "error_message")
INPUT_FORMATS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl"}
OUTPUT_FORMATS = INPUT_FORMATS
# What to ask the service's streamed download for, by output format.
DOWNLOAD_TYPES = {"csv": "text/csv", "json": "application/json", "jsonl": "application/x-ndjson"}
CONTRIBUTION_PREFIX = "contrib_"

RawRecord = dict[str, Any]


def read_records(path: Path) -> list[RawRecord]:
    """Read records from a .csv, .json or .jsonl file."""
    kind = _format(path, INPUT_FORMATS, "input")
    if kind == "csv":
        return read_csv_records(path)
    try:
        text = path.read_text(encoding="utf-8")
        if kind == "jsonl":
            return [_as_record(json.loads(line), path) for line in text.splitlines() if line.strip()]
        payload = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if isinstance(payload, list):
        return payload
    return [_as_record(payload, path)]


def read_csv_records(path: Path) -> list[RawRecord]:
    """Read a CSV with a header into records of raw strings, None for empty cells, without the label `y`."""
    try:
        # utf-8-sig: a byte-order mark, as spreadsheet programs write, is no part of the first column's name.
        with path.open(encoding="utf-8-sig", newline="") as stream:
            rows = [row for row in csv.reader(stream) if row]  # a blank line holds no record
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read {path} as CSV: {exc}") from None
    if not rows:
        raise InputError(f"cannot read {path} as CSV: the file is empty, without even a header")
    names = rows[0]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"cannot read {path} as CSV: columns named twice in the header: {', '.join(twice)}")
    keep = [(index, name) for index, name in enumerate(names) if name != LABEL_COLUMN]
    records = []
    for number, values in enumerate(rows[1:], start=1):
        if len(values) != len(names):  # e.g. a file cut short: refuse rather than guess the missing cells
            raise InputError(
                f"cannot read {path} as CSV: record {number} has {len(values)} fields, the header {len(names)}"
            )
        records.append({name: values[index] or None for index, name in keep})
    return records


def output_format(path: Path) -> str:
    """Return the format an output path asks for by its extension: csv, json or jsonl."""
    return _format(path, OUTPUT_FORMATS, "output")


def write_results(results: Sequence[dict[str, Any]], path: Path) -> None:
    """Write results to `path` in the format its extension names, replacing the file only when complete."""
    kind = output_format(path)
    partial = path.with_name(f".{path.name}.part")
    with partial.open("w", encoding="utf-8", newline="") as stream:
        if kind == "csv":
            write_csv_results(results, stream)
        elif kind == "json":
            json.dump(results, stream, allow_nan=False)
            stream.write("\n")
        else:
            write_json_lines(results, stream)
    os.replace(partial, path)


def write_json_lines(results: Iterable[dict[str, Any]], stream: TextIO) -> None:
    """Write one result per line as JSON."""
    for item in results:
        stream.write(json.dumps(item, allow_nan=False))
        stream.write("\n")


def write_csv_results(results: Sequence[dict[str, Any]], stream: TextIO) -> None:
    """Write results as CSV: row, business_outcome, phat, the model variables sorted, then error columns."""
    writer = csv.DictWriter(stream, fieldnames=result_columns(results), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(_flatten(item) for item in results)


def result_columns(results: Iterable[dict[str, Any]]) -> list[str]:
    """Return the CSV columns for these results: contributions (with --explain) as one contrib_ column each."""
    columns = {key for item in results for key in _flatten(item)} - {*RESULT_HEAD, *ERROR_COLUMNS}
    return [*RESULT_HEAD, *sorted(columns), *ERROR_COLUMNS]


def read_results(path: Path) -> Iterator[dict[str, Any]]:
    """Read back, row by row, a results file the service streamed: `error` and `business_outcome` of each row."""
    kind = output_format(path)
    with path.open(encoding="utf-8", newline="") as stream:
        if kind == "json":
            yield from json.load(stream)
            return
        if kind == "jsonl":
            yield from (json.loads(line) for line in stream if line.strip())
            return
        reader = csv.reader(stream)
        header = next(reader, [])
        at = {name: index for index, name in enumerate(header)}
        error, outcome = at.get("error_message"), at.get("business_outcome")
        for cells in reader:
            row: dict[str, Any] = {}
            if error is not None and cells[error]:
                row["error"] = cells[error]
            if outcome is not None and cells[outcome]:
                row["business_outcome"] = int(cells[outcome])
            yield row


def _flatten(item: dict[str, Any]) -> dict[str, Any]:
    flat = {key: value for key, value in item.items() if key not in ("error", "contributions")}
    error = item.get("error")
    if isinstance(error, dict):
        flat["error_field"] = error.get("field", "")
        flat["error_message"] = error.get("message", "")
    contributions = item.get("contributions")
    if isinstance(contributions, dict):
        flat |= {CONTRIBUTION_PREFIX + name: value for name, value in contributions.items()}
    return flat


def _format(path: Path, formats: dict[str, str], role: str) -> str:
    kind = formats.get(path.suffix.lower())
    if kind is None:
        known = ", ".join(formats)
        raise InputError(f"cannot tell the {role} format of {path}: use one of the extensions {known}")
    return kind


def _as_record(value: Any, path: Path) -> RawRecord:
    if not isinstance(value, dict):
        raise InputError(f"{path} holds {type(value).__name__}, not a JSON object or a list of objects")
    return value
