import numpy as np
import pandas as pd
import pytest

from training.encoding import ColumnSelector, FixedLevelEncoder

LEVELS = {"x5": ["friday", "monday", "saturday"], "x31": ["america", "asia"]}


@pytest.fixture
def encoder() -> FixedLevelEncoder:
    return FixedLevelEncoder(levels=LEVELS).fit(pd.DataFrame({"x5": ["monday"], "x31": ["asia"]}))


def test_names_drop_the_baseline_and_add_missing_indicators(encoder: FixedLevelEncoder) -> None:
    assert encoder.get_feature_names_out().tolist() == [
        "x5_monday",
        "x5_saturday",
        "x5_nan",
        "x31_asia",
        "x31_nan",
    ]


def test_one_row_keeps_every_column_unlike_get_dummies(encoder: FixedLevelEncoder) -> None:
    row = pd.DataFrame({"x5": ["saturday"], "x31": ["america"]})
    assert pd.get_dummies(row, drop_first=True).shape[1] == 0
    assert encoder.transform(row).tolist() == [[0.0, 1.0, 0.0, 0.0, 0.0]]


def test_unseen_and_missing_levels_give_all_zero_level_indicators(encoder: FixedLevelEncoder) -> None:
    rows = pd.DataFrame({"x5": ["funday", None, "friday"], "x31": ["mars", "asia", None]})
    assert encoder.transform(rows).tolist() == [
        [0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 1.0, 0.0],
        [0.0, 0.0, 0.0, 0.0, 1.0],
    ]


def test_levels_are_learned_sorted_when_not_given() -> None:
    encoder = FixedLevelEncoder().fit(pd.DataFrame({"c": ["b", "a", None, "c", "a"]}))
    assert encoder.levels_ == {"c": ["a", "b", "c"]}
    assert encoder.get_feature_names_out().tolist() == ["c_b", "c_c", "c_nan"]


def test_selector_orders_by_the_model_not_by_the_input() -> None:
    selector = ColumnSelector(columns=["b", "a"]).fit(pd.DataFrame(columns=["a", "b", "c"]))
    assert selector.transform(np.array([[1.0, 2.0, 3.0]])).tolist() == [[2.0, 1.0]]


def test_selector_refuses_a_variable_preprocessing_does_not_make() -> None:
    with pytest.raises(ValueError, match=r"\['z'\]"):
        ColumnSelector(columns=["z"]).fit(pd.DataFrame(columns=["a"]))
