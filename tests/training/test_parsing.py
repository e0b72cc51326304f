import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from training.parsing import RecordParser, parse_levels, parse_numbers


def clean_like_training_procedure(raw: str) -> float:
    """The reference's own cleaning: strip '$' ',' ')' '%', turn '(' into '-'."""
    return float(raw.replace("$", "").replace(",", "").replace(")", "").replace("(", "-").replace("%", ""))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("$6,882.34 ", 6882.34),
        ("($5,032.58)", -5032.58),
        ("$-5,032.58", -5032.58),
        ("$3709.93", 3709.93),
        ("62.59%", 62.59),
        ("45.85", 45.85),
        ("-1.018506", -1.018506),
        (" 7 ", 7.0),
        (12, 12.0),
        (-0.5, -0.5),
        ("1e3", 1000.0),
    ],
)
def test_parses_every_client_format(raw: object, expected: float) -> None:
    values, errors = parse_numbers([raw])
    assert errors == {}
    assert values[0] == expected


@pytest.mark.parametrize("raw", [None, "", "nan", "NaN", "null", " NA ", float("nan")])
def test_missing_spellings_become_nan_without_error(raw: object) -> None:
    values, errors = parse_numbers([raw, "1.5"])
    assert errors == {}
    assert math.isnan(values[0])
    assert values[1] == 1.5


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("abc", "cannot parse 'abc' as a number"),
        ("1.2.3", "cannot parse '1.2.3' as a number"),
        (True, "expected a number, got boolean"),
        ({"a": 1}, "expected a number, got object"),
        ([1], "expected a number, got array"),
        ("1e999", "not a finite number"),
        ("Infinity", "not a finite number"),
        (10**400, "not a finite number"),
    ],
)
def test_bad_values_are_reported_for_their_row_only(raw: object, message: str) -> None:
    values, errors = parse_numbers(["1", raw, "$2.00 "])
    assert errors == {1: message}
    assert values[0] == 1.0
    assert math.isnan(values[1])
    assert values[2] == 2.0


def test_every_real_row_parses_to_the_reference_cleaning(real_rows: dict, reference: dict) -> None:
    numeric = reference["numeric_columns"]
    parser = RecordParser(numeric=numeric, categorical=list(reference["categorical_levels"])).fit([])
    records = [row["values"] for row in real_rows["rows"]]
    frame, errors = parser.parse(records)
    assert errors == []
    for i, record in enumerate(records):
        for name in numeric:
            raw = record[name]
            if raw in (None, "nan", ""):
                assert math.isnan(frame[name].iloc[i]), (i, name)
            else:
                assert frame[name].iloc[i] == clean_like_training_procedure(raw), (i, name, raw)
    assert frame["x5"].tolist() == [r["x5"] for r in records]


def test_first_thousand_x12_strings_of_the_training_csv(real_rows: dict) -> None:
    raw = real_rows["x12_first_values_of_train_csv"]
    values, errors = parse_numbers(raw)
    assert errors == {}
    assert values.tolist() == [clean_like_training_procedure(r) for r in raw]
    assert values[2] == -5032.58


def test_levels_are_stripped_and_missing_becomes_none() -> None:
    levels, errors = parse_levels(["monday", " friday ", "nan", None, "", 3, float("nan")])
    assert levels.tolist() == ["monday", "friday", None, None, None, None, None]
    assert errors == {5: "expected a string, got int"}


def test_a_row_parses_the_same_alone_as_in_a_mixed_batch() -> None:
    batch = ["$1,000.50 ", 3, None, "abc", "(4.25)", "7%"]
    together, _ = parse_numbers(batch)
    alone = [parse_numbers([value])[0][0] for value in batch]
    np.testing.assert_array_equal(together, alone)


@given(st.lists(st.one_of(st.text(), st.integers(), st.floats(), st.none(), st.booleans()), max_size=20))
def test_any_value_gives_a_number_or_an_error_never_an_exception(raw: list) -> None:
    values, errors = parse_numbers(raw)
    assert len(values) == len(raw)
    for row, value in enumerate(values):
        assert row in errors or math.isnan(value) or math.isfinite(value)
        if row in errors:
            assert math.isnan(value)
