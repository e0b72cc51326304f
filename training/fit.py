"""Training from a CSV, following the exercise-26 procedure.

1. Split 90/10 (validation), then the 90 into train and test, with random_state=13.
2. Fit the preprocessor on the training split only.
3. L1 logistic regression on every feature; keep the strongest by coef squared.
4. Preliminary unpenalised, no-intercept fit on the training split: AUC on train/val/test.
5. Final unpenalised, no-intercept fit on all rows, transformed by the same preprocessor.
6. Threshold: the 75th percentile of the final model's training predictions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from training.parsing import parse_numbers
from training.pipeline import assemble, make_preprocessor, owning_fields

SPLIT_SEED = 13
THRESHOLD_PERCENTILE = 75
NUMERIC_SHARE = 0.99


class TrainingDataError(ValueError):
    """The data cannot be trained on as given: a missing column, an unusable target."""


@dataclass
class FitResult:
    """A fitted pipeline with the figures that justify it."""

    pipeline: Pipeline
    threshold: float
    metrics: dict[str, Any] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)


def read_raw_csv(path: Path) -> pd.DataFrame:
    """Read a CSV exactly as written: every cell a string, empty cells empty."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def infer_schema(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """Split columns into numeric (nearly every present value parses) and categorical."""
    numeric, categorical = [], []
    for name in frame.columns:
        values, errors = parse_numbers(frame[name].tolist())
        present = np.count_nonzero(~np.isnan(values)) + len(errors)
        is_numeric = present > 0 and len(errors) <= (1 - NUMERIC_SHARE) * present
        (numeric if is_numeric else categorical).append(name)
    return numeric, categorical


def unpenalised_logit(X: np.ndarray, y: np.ndarray) -> LogisticRegression:
    """Fit a maximum-likelihood logistic regression with no intercept."""
    model = LogisticRegression(C=np.inf, fit_intercept=False, solver="newton-cholesky", tol=1e-10, max_iter=200)
    return model.fit(X, y)


def standard_errors(model: LogisticRegression, X: np.ndarray) -> np.ndarray:
    """Return coefficient standard errors from the inverse Fisher information."""
    p = model.predict_proba(X)[:, 1]
    information = (X * (p * (1 - p))[:, None]).T @ X
    return np.sqrt(np.diag(np.linalg.inv(information)))


def fit_frame(
    frame: pd.DataFrame,
    target: str = "y",
    n_features: int = 25,
    categorical: Sequence[str] | None = None,
) -> FitResult:
    """Fit the full procedure on a raw frame and return the served pipeline with metrics."""
    if target not in frame.columns:
        shown = ", ".join(list(frame.columns)[:10]) + (", ..." if len(frame.columns) > 10 else "")
        raise TrainingDataError(f"target column {target!r} is not in the data (columns: {shown})")
    labels = pd.to_numeric(frame[target], errors="coerce")
    if labels.isna().any() or not labels.isin([0, 1]).all():
        raise TrainingDataError(f"target column {target!r} must hold 0 or 1 in every row")
    y = labels.to_numpy(dtype=int)
    X = frame.drop(columns=[target])
    numeric, cats = infer_schema(X)
    if categorical is not None:
        cats = [c for c in X.columns if c in set(categorical)]
        numeric = [c for c in X.columns if c not in set(categorical)]

    x_rest, x_val, y_rest, y_val = train_test_split(X, y, test_size=0.1, random_state=SPLIT_SEED)
    x_train, x_test, y_train, y_test = train_test_split(x_rest, y_rest, test_size=len(x_val), random_state=SPLIT_SEED)

    full = make_preprocessor(numeric, cats).fit(x_train)
    names = list(full.get_feature_names_out())
    lasso = LogisticRegression(l1_ratio=1.0, solver="liblinear", fit_intercept=False)
    lasso.fit(full.transform(x_train), y_train)
    strongest = np.argsort(-(lasso.coef_[0] ** 2), kind="stable")[:n_features]
    variables = [names[i] for i in strongest]

    used_numeric, used_cats = owning_fields(variables, cats)
    served = make_preprocessor(used_numeric, used_cats).fit(x_train)
    # The served pipeline without its model: raw rows in, the model's design matrix out.
    design = assemble(served, variables, "passthrough").transform

    preliminary = unpenalised_logit(design(x_train), y_train)
    auc = {
        split: float(roc_auc_score(labels, preliminary.predict_proba(design(rows))[:, 1]))
        for split, rows, labels in (("train", x_train, y_train), ("val", x_val, y_val), ("test", x_test, y_test))
    }

    x_all = pd.concat([x_train, x_val, x_test])
    y_all = np.concatenate([y_train, y_val, y_test])
    design_all = design(x_all)
    final = unpenalised_logit(design_all, y_all)
    phat_all = final.predict_proba(design_all)[:, 1]
    threshold = float(np.percentile(phat_all, THRESHOLD_PERCENTILE))
    errors = standard_errors(final, design_all)

    metrics = {
        "procedure": "exercise-26: L1 selection on the train split, unpenalised no-intercept logit",
        "rows": {"train": len(x_train), "val": len(x_val), "test": len(x_test)},
        "auc_preliminary": auc,
        "auc_final_all_rows": float(roc_auc_score(y_all, phat_all)),
        "threshold_percentile": THRESHOLD_PERCENTILE,
        "coefficients": dict(zip(variables, final.coef_[0].tolist())),
        "std_err": dict(zip(variables, errors.tolist())),
        "schema": {"numeric": numeric, "categorical": cats},
    }
    return FitResult(pipeline=assemble(served, variables, final), threshold=threshold, metrics=metrics)


def fit_csv(path: Path, target: str = "y", n_features: int = 25) -> FitResult:
    """Fit on a CSV file and fingerprint the data it was trained on."""
    if not Path(path).is_file():
        raise TrainingDataError(f"no such file: {path}")
    try:
        frame = read_raw_csv(path)
    except pd.errors.EmptyDataError:
        raise TrainingDataError(f"{path} is empty") from None
    result = fit_frame(frame, target=target, n_features=n_features)
    result.fingerprint = {
        "source": str(path),
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "rows": len(frame),
        "columns": len(frame.columns),
    }
    return result
