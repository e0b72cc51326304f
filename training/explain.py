"""Exact explanations of a linear model's scores: each variable's coefficient times its model input.

For a logistic regression, `logit(phat) = intercept + sum(coefficient * input)` over the model's
variables, and the inputs are the values every result row already holds (the variables as the
model saw them). So a row's contributions are one multiplication each, with no approximation: they
sum to the row's logit up to the rounding of the sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sklearn.pipeline import Pipeline

from training.pipeline import is_linear, model_variables


@dataclass(frozen=True)
class LinearTerms:
    """The coefficient of each model variable, and the intercept."""

    coefficients: dict[str, float]
    intercept: float

    @classmethod
    def of(cls, pipeline: Pipeline) -> LinearTerms | None:
        """Return the terms of a pipeline whose model is linear with one output; None for any other model."""
        if not is_linear(pipeline):
            return None
        model = pipeline.steps[-1][1]
        coef = model.coef_
        variables = model_variables(pipeline)
        intercept = getattr(model, "intercept_", 0.0)
        intercept = float(intercept[0]) if hasattr(intercept, "__len__") else float(intercept)
        return cls(dict(sorted(zip(variables, coef[0].tolist(), strict=True))), intercept)

    def explain(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Return the contributions and intercept of one scored result row, which holds every model input."""
        contributions = {name: coefficient * row[name] for name, coefficient in self.coefficients.items()}
        return {"contributions": contributions, "intercept": self.intercept}
