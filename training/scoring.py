"""Score raw records with a fitted pipeline: the plain function behind the worker."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from training.parsing import Records
from training.pipeline import model_variables


def score_records(pipeline: Pipeline, records: Records, threshold: float, first_row: int = 0) -> list[dict[str, Any]]:
    """Score records in input order; a row that cannot be parsed gets an error in its place.

    Each scored row holds `business_outcome` (1 when phat >= threshold), `phat`,
    `row` and every model variable as the model saw it, keys in alphabetical order.
    """
    frame, errors = pipeline.named_steps["parse"].parse(records)
    bad_rows: dict[int, dict[str, str]] = {}
    for error in errors:
        bad_rows.setdefault(error.row, {"field": error.field, "message": error.message})
    good = np.setdiff1d(np.arange(len(frame)), np.fromiter(bad_rows, int, len(bad_rows)))

    features = pipeline[1:-1].transform(frame.iloc[good]) if good.size else np.empty((0, 0))
    phat = pipeline[-1].predict_proba(features)[:, 1] if good.size else np.empty(0)
    outcome = (phat >= threshold).astype(int)

    variables = model_variables(pipeline)
    keys = ["business_outcome", "phat", "row", *variables]
    order = sorted(range(len(keys)), key=keys.__getitem__)
    sorted_keys = [keys[i] for i in order]
    table = np.column_stack([outcome, phat, good, features])[:, order].tolist() if good.size else []

    results: list[dict[str, Any]] = [{}] * len(frame)
    for values, row in zip(table, good.tolist()):
        item = dict(zip(sorted_keys, values))
        item["business_outcome"] = int(item["business_outcome"])
        item["row"] = row + first_row
        results[row] = item
    for row, error in bad_rows.items():
        results[row] = {"error": error, "row": row + first_row}
    return results
