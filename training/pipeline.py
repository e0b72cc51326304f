"""The one preprocessing definition, shared by training and serving.

A served model is a single scikit-learn Pipeline:

    parse  -> RecordParser: raw JSON records to typed columns
    encode -> ColumnTransformer: mean-impute + standardize numerics, fixed-level indicators
    select -> ColumnSelector: the model's variables, in the model's order
    model  -> LogisticRegression

Training fits `parse` and `encode` on the training split, chooses variables,
fits `model`, and saves the whole object. Serving loads and calls it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from training.encoding import ColumnSelector, FixedLevelEncoder
from training.parsing import RecordParser


def make_preprocessor(
    numeric: Sequence[str],
    categorical: Sequence[str],
    levels: Mapping[str, Sequence[str]] | None = None,
) -> Pipeline:
    """Return the unfitted parse + encode steps for a raw schema."""
    numeric_steps = Pipeline(
        [
            ("impute", SimpleImputer(strategy="mean", keep_empty_features=True)),
            ("scale", StandardScaler()),
        ]
    )
    encode = ColumnTransformer(
        [
            ("numeric", numeric_steps, list(numeric)),
            ("categorical", FixedLevelEncoder(levels=levels), list(categorical)),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline(
        [
            ("parse", RecordParser(numeric=list(numeric), categorical=list(categorical))),
            ("encode", encode),
        ]
    )


def assemble(
    preprocessor: Pipeline, variables: Sequence[str], model: LogisticRegression | Literal["passthrough"]
) -> Pipeline:
    """Join a fitted preprocessor, the model's variables and a fitted model into one Pipeline."""
    select = ColumnSelector(columns=list(variables))
    select.fit(pd.DataFrame(columns=list(preprocessor.get_feature_names_out())))
    return Pipeline([*preprocessor.steps, ("select", select), ("model", model)])


def model_variables(pipeline: Pipeline) -> list[str]:
    """Return the variables the model reads, in the model's order."""
    return list(pipeline.named_steps["select"].columns)


def input_fields(pipeline: Pipeline) -> list[str]:
    """Return the raw record fields the pipeline reads, sorted."""
    return sorted(pipeline.named_steps["parse"].get_feature_names_out())


def is_linear(pipeline: Pipeline) -> bool:
    """Tell whether the model is linear with one output: its scores are explained exactly (training.explain)."""
    coef = getattr(pipeline.steps[-1][1], "coef_", None)
    return coef is not None and getattr(coef, "ndim", 0) == 2 and coef.shape == (1, len(model_variables(pipeline)))


def schema(pipeline: Pipeline) -> dict[str, Any]:
    """Return what a model store records of the pipeline's interface: its input fields, variables, linearity."""
    return {
        "input_fields": input_fields(pipeline),
        "output_variables": model_variables(pipeline),
        "linear": is_linear(pipeline),
    }


def owning_fields(variables: Sequence[str], categorical: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split the raw fields that variables read into (numeric, categorical)."""
    cats = [c for c in categorical if any(v.startswith(f"{c}_") for v in variables)]
    owned = {f"{c}_" for c in cats}
    numeric = [v for v in variables if not any(v.startswith(prefix) for prefix in owned)]
    return numeric, cats
