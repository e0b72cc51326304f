"""The approved exercise-26 GLM, rebuilt exactly from its published statistics."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from training.pipeline import assemble, make_preprocessor, owning_fields

REFERENCE = "approved_glm26.json"


def load_reference() -> dict[str, Any]:
    """Return the approved model's reference document, shipped as package data."""
    return json.loads(resources.files("training.data").joinpath(REFERENCE).read_text())


def reference_bytes() -> bytes:
    """Return the raw bytes of the reference document, for fingerprinting."""
    return resources.files("training.data").joinpath(REFERENCE).read_bytes()


def build_approved(reference: dict[str, Any] | None = None) -> Pipeline:
    """Return the approved GLM as a fitted Pipeline, with no refitting of any number."""
    ref = reference or load_reference()
    levels: dict[str, list[str]] = ref["categorical_levels"]
    stats = ref["numeric_statistics_32k_split"]

    variables: list[str] = ref["variables_model_order"]
    numeric, categorical = owning_fields(variables, list(levels))
    preprocessor = make_preprocessor(numeric, categorical, levels)
    # Fit on two placeholder rows only to shape the estimators; every statistic is set below.
    preprocessor.fit([{name: float(i) for name in numeric} for i in range(2)])
    numeric_steps = preprocessor.named_steps["encode"].named_transformers_["numeric"]
    imputer, scaler = numeric_steps.named_steps["impute"], numeric_steps.named_steps["scale"]
    imputer.statistics_ = np.array([stats[c]["imputer_mean"] for c in numeric])
    scaler.mean_ = np.array([stats[c]["scaler_mean"] for c in numeric])
    scaler.var_ = np.array([stats[c]["scaler_var"] for c in numeric])
    scaler.scale_ = np.array([stats[c]["scaler_scale"] for c in numeric])

    model = LogisticRegression(C=np.inf, fit_intercept=False)
    model.coef_ = np.array([[ref["coefficients"][v] for v in variables]])
    model.intercept_ = np.array([float(ref["intercept"])])
    model.classes_ = np.array([0, 1])
    model.n_features_in_ = len(variables)
    return assemble(preprocessor, variables, model)
