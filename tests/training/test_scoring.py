"""Rows whose fields are at fault: none of the model's fields, or (strict) a field the model does not read."""

from training.pipeline import input_fields
from training.scoring import score_batches, score_records

FIELDS = ["x12", "x31", "x44", "x5", "x53", "x56", "x58", "x62", "x81", "x91"]


def test_a_row_holding_none_of_the_model_fields_is_an_error_in_its_place(approved, real_rows) -> None:
    good = real_rows["rows"][0]["values"]
    results = score_records(approved, [good, {"x121": "$1,000.00", "X5": "monday"}, {}, good], 0.5, first_row=10)
    expected = sorted(input_fields(approved))
    assert [item["row"] for item in results] == [10, 11, 12, 13]
    for item in results[1:3]:
        assert item["error"]["code"] == "no_model_fields"
        assert sorted(item["error"]["fields"]) == expected == sorted(FIELDS)
        assert "none of the model's input fields" in item["error"]["message"]
    assert results[0] == results[3] | {"row": 10}
    assert 0 < results[0]["phat"] < 1


def test_a_row_of_nulls_holds_the_model_fields_and_is_scored_with_every_value_missing(approved) -> None:
    (item,) = score_records(approved, [{"x5": None, "x12": None}], 0.5)
    assert "error" not in item and 0 < item["phat"] < 1


def test_strict_makes_an_error_of_an_unknown_field_naming_it_only_in_strict_batches(approved, real_rows) -> None:
    good = real_rows["rows"][0]["values"]
    known = {name: good[name] for name in FIELDS}
    rows = [known, dict(known, x121=None), {"x121": None}]
    strict, lenient = score_batches(approved, [rows, rows], [0.5, 0.5], strict=[True, False])
    assert "error" not in strict[0]
    assert strict[1]["error"]["code"] == "unknown_field"
    assert strict[1]["error"]["field"] == "x121" and "'x121'" in strict[1]["error"]["message"]
    assert strict[2]["error"]["code"] == "no_model_fields"
    assert lenient[1]["phat"] == strict[0]["phat"] and lenient[2]["error"]["code"] == "no_model_fields"
