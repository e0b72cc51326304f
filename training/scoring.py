"""Score raw records with a fitted pipeline: the plain functions behind the worker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from training.explain import LinearTerms
from training.parsing import Records
from training.pipeline import model_variables

Results = list[dict[str, Any]]
# Where the API stores a row's id (?id_field=), echoed as `id` in the row's result; see api/ids.py.
ID_KEY = "$id"
# Kept in every result row whatever `fields` names.
ALWAYS_KEPT = frozenset({"row", "id", "error"})


def score_records(
    pipeline: Pipeline,
    records: Records,
    threshold: float,
    first_row: int = 0,
    strict: bool = False,
    fields: Sequence[str] = (),
    explain: bool = False,
) -> Results:
    """Score records in input order; a row that cannot be parsed gets an error in its place.

    Each scored row holds `business_outcome` (1 when phat >= threshold), `phat`,
    `row` and every model variable as the model saw it, keys in alphabetical order.
    A record with an id (ID_KEY) has it as `id` in its result. With `explain`, a scored row gains
    `contributions` and `intercept`; with `fields`, it keeps only those keys (and `row`, `id`).
    """
    return score_batches(pipeline, [records], [threshold], [first_row], [strict], [fields], [explain])[0]


def score_batches(
    pipeline: Pipeline,
    batches: Sequence[Records],
    thresholds: Sequence[float],
    first_rows: Sequence[int] | None = None,
    strict: Sequence[bool] | None = None,
    fields: Sequence[Sequence[str]] | None = None,
    explain: Sequence[bool] | None = None,
) -> list[Results]:
    """Score several jobs' records in one pipeline call; return each job's results, as `score_records` would.

    Each batch keeps its own threshold, row numbers (from its `first_rows` entry), per-row errors,
    `fields` and `explain`.
    A row holding none of the model's input fields is an error, and so is, in a `strict` batch, a row
    holding a field the model does not read.
    """
    sizes = np.fromiter((len(batch) for batch in batches), int, len(batches))
    records = [record for batch in batches for record in batch]
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    firsts = np.zeros(len(batches), int) if first_rows is None else np.asarray(first_rows, int)
    row_number = np.arange(len(records)) - np.repeat(starts - firsts, sizes)
    row_threshold = np.repeat(np.asarray(thresholds, float), sizes)

    parser = pipeline.named_steps["parse"]
    frame, errors = parser.parse(records)
    strict_rows = np.repeat(np.asarray(strict or [False] * len(batches), bool), sizes)
    bad_rows = field_errors(records, (*parser.numeric, *parser.categorical), strict_rows)
    for error in errors:
        bad_rows.setdefault(error.row, {"field": error.field, "message": error.message})
    good = np.setdiff1d(np.arange(len(frame)), np.fromiter(bad_rows, int, len(bad_rows)))

    features = pipeline[1:-1].transform(frame.iloc[good]) if good.size else np.empty((0, 0))
    phat = pipeline[-1].predict_proba(features)[:, 1] if good.size else np.empty(0)
    outcome = (phat >= row_threshold[good]).astype(int)

    variables = model_variables(pipeline)
    keys = ["business_outcome", "phat", "row", *variables]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    sorted_keys = [keys[i] for i in order]
    table = np.column_stack([outcome, phat, row_number[good], features])[:, order].tolist() if good.size else []

    results: Results = [{}] * len(frame)
    for values, row in zip(table, good.tolist()):
        item = dict(zip(sorted_keys, values))
        item["business_outcome"] = int(item["business_outcome"])
        item["row"] = int(item["row"])
        results[row] = item
    for row, error in bad_rows.items():
        results[row] = {"error": error, "row": int(row_number[row])}
    terms = LinearTerms.of(pipeline) if explain and any(explain) else None
    shaped = []
    for batch, (start, size) in enumerate(zip(starts.tolist(), sizes.tolist())):
        part = results[start : start + size]
        wanted = fields[batch] if fields else ()
        if explain and explain[batch] and terms is None:
            raise ValueError("this model has no linear coefficients to explain its scores with")
        if wanted or (explain and explain[batch]) or (part and ID_KEY in records[start]):
            part = shape(part, records[start : start + size], wanted, terms if explain and explain[batch] else None)
        shaped.append(part)
    return shaped


def shape(results: Results, records: Records, fields: Sequence[str], terms: LinearTerms | None) -> Results:
    """Return result rows with their ids and explanations added, and only `fields` kept (all if empty)."""
    keep = ALWAYS_KEPT | frozenset(fields) if fields else None
    shaped = []
    for item, record in zip(results, records, strict=True):
        extra: dict[str, Any] = {}
        if ID_KEY in record:
            extra["id"] = record[ID_KEY]
        if terms is not None and "error" not in item:
            extra |= terms.explain(item)
        row = dict(sorted((item | extra).items())) if extra else item
        shaped.append({key: value for key, value in row.items() if key in keep} if keep is not None else row)
    return shaped


def field_errors(records: Records, fields: Sequence[str], strict: np.ndarray) -> dict[int, dict[str, Any]]:
    """Return the errors of rows that hold none of `fields`, or (where `strict`) a field not among them."""
    known = frozenset(fields)
    errors: dict[int, dict[str, Any]] = {}
    for row in np.flatnonzero([known.isdisjoint(record) for record in records]).tolist():
        message = f"the row holds none of the model's input fields: {', '.join(fields)}"
        errors[row] = {"code": "no_model_fields", "fields": list(fields), "message": message}
    for row in np.flatnonzero(strict).tolist():
        unknown = [name for name in records[row] if name not in known and name != ID_KEY]
        if unknown and row not in errors:
            message = f"the model does not read {', '.join(map(repr, unknown))} (strict)"
            errors[row] = {"code": "unknown_field", "field": unknown[0], "message": message}
    return errors


def failed_rows(results: Results) -> int:
    """Return how many rows got an error in place of a score."""
    return sum(1 for item in results if "error" in item)
