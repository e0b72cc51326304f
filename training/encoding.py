"""Fixed-level indicator encoding and selection of the model's variables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin


class FixedLevelEncoder(TransformerMixin, BaseEstimator):
    """Encode categorical columns as `col_level` indicators against levels fixed at fit.

    Levels are sorted as pandas sorts them and the first is the baseline, as
    `get_dummies(drop_first=True)` does on the training set. Unlike get_dummies on
    a batch, a one-row batch still yields every column: an unseen or missing value
    sets all of its column's level indicators to 0. With `indicate_missing`, a
    `col_nan` indicator marks the missing rows, as `dummy_na=True` does.
    """

    def __init__(
        self,
        levels: Mapping[str, Sequence[str]] | None = None,
        indicate_missing: bool = True,
    ) -> None:
        self.levels = levels
        self.indicate_missing = indicate_missing

    def fit(self, X: pd.DataFrame, y: object = None) -> FixedLevelEncoder:
        """Learn each column's sorted levels, unless they were given."""
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        given = self.levels or {}
        self.levels_ = {
            str(col): list(given[col]) if col in given else sorted(X[col].dropna().unique())
            for col in self.feature_names_in_
        }
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Return the 0/1 indicators as floats, one block of columns per input column."""
        blocks = []
        for col, levels in self.levels_.items():
            codes = pd.Index(levels).get_indexer(X[col])  # -1: unseen or missing
            blocks.append(codes[:, None] == np.arange(1, len(levels)))
            if self.indicate_missing:
                blocks.append(X[col].isna().to_numpy()[:, None])
        if not blocks:
            return np.empty((len(X), 0))
        return np.hstack(blocks).astype(float)

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Name the indicators `col_level`, baselines dropped."""
        names: list[str] = []
        for col, levels in self.levels_.items():
            names.extend(f"{col}_{level}" for level in levels[1:])
            if self.indicate_missing:
                names.append(f"{col}_nan")
        return np.array(names, dtype=object)


class ColumnSelector(TransformerMixin, BaseEstimator):
    """Select the model's variables, by name, in the model's order."""

    def __init__(self, columns: Sequence[str] = ()) -> None:
        self.columns = columns

    def fit(self, X: pd.DataFrame, y: object = None) -> ColumnSelector:
        """Check that every variable exists in the input."""
        missing = sorted(set(self.columns) - set(X.columns))
        if missing:
            raise ValueError(f"variables not produced by preprocessing: {missing}")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.indices_ = np.array([X.columns.get_loc(c) for c in self.columns], dtype=int)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Return the selected columns, in the model's order, as a float matrix."""
        return np.asarray(X, dtype=float)[:, self.indices_]

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """Name the selected variables."""
        return np.array(self.columns, dtype=object)
