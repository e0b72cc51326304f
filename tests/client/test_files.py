"""Reading records from CSV and JSON files, writing results as CSV, JSON and JSON lines."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest

from client.errors import InputError
from client.files import output_format, read_records, write_csv_results, write_json_lines, write_results

RAW_CSV = 'x0,x12,x31,x63,y\n007,"$6,882.34 ",asia,62.59%,1\n,"($5,032.58)", germany ,NA,0\n-1e3,$-5.00,,,1\n'
RESULTS = [
    {"business_outcome": 1, "phat": 0.30000000000000004, "row": 0, "x31_asia": 1.0, "x12": -0.25},
    {"error": {"field": "x12", "message": "cannot parse 'abc' as a number"}, "row": 1},
    {"business_outcome": 0, "phat": 1e-17, "row": 2, "x31_asia": 0.0, "x12": 1.5},
]


def test_csv_values_stay_the_raw_strings_and_the_label_is_dropped(tmp_path) -> None:
    path = tmp_path / "input.csv"
    path.write_text(RAW_CSV)
    assert read_records(path) == [
        {"x0": "007", "x12": "$6,882.34 ", "x31": "asia", "x63": "62.59%"},
        {"x0": None, "x12": "($5,032.58)", "x31": " germany ", "x63": "NA"},
        {"x0": "-1e3", "x12": "$-5.00", "x31": None, "x63": None},
    ]


def test_a_csv_written_by_pandas_reads_back_as_written(tmp_path) -> None:
    frame = pd.DataFrame({"x12": ["$6,882.34 ", "($5,032.58)", None], "x63": ["62.59%", "1.5", "0.10"], "y": [1, 0, 1]})
    path = tmp_path / "frame.csv"
    frame.to_csv(path, index=False)
    assert read_records(path) == [
        {"x12": "$6,882.34 ", "x63": "62.59%"},
        {"x12": "($5,032.58)", "x63": "1.5"},
        {"x12": None, "x63": "0.10"},
    ]


def test_a_csv_may_have_a_byte_order_mark_blank_lines_and_quoted_line_breaks(tmp_path) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(b'\xef\xbb\xbfx0,x5\r\n\r\n"two\nlines",""\r\n\n')
    assert read_records(path) == [{"x0": "two\nlines", "x5": None}]


def test_an_undecodable_csv_is_an_input_error(tmp_path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("x0\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"cannot read .* as CSV"):
        read_records(path)


def test_a_csv_without_a_label_keeps_every_column(tmp_path) -> None:
    path = tmp_path / "input.csv"
    path.write_text("x0,x1\n1,2\n")
    assert read_records(path) == [{"x0": "1", "x1": "2"}]


def test_json_holds_one_object_or_a_list(tmp_path) -> None:
    one, many, lines = tmp_path / "one.json", tmp_path / "many.json", tmp_path / "many.jsonl"
    one.write_text(json.dumps({"x12": "$1.00", "x5": None}))
    many.write_text(json.dumps([{"x12": "$1.00"}, {"x12": 2.5}]))
    lines.write_text('{"x12": "$1.00"}\n\n{"x12": 2.5}\n')
    assert read_records(one) == [{"x12": "$1.00", "x5": None}]
    assert read_records(many) == read_records(lines) == [{"x12": "$1.00"}, {"x12": 2.5}]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("records.txt", "x0\n1\n", "cannot tell the input format"),
        ("records.json", "7", "not a JSON object or a list of objects"),
        ("records.json", "{oops", "cannot read"),
        ("missing.csv", None, "No such file"),
        ("empty.csv", "", "cannot read"),
        ("twice.csv", "x0,x1,x0\n1,2,3\n", "columns named twice in the header: x0"),
        ("long.csv", "x0,x1\n1,2\n1,2,3\n", "record 2 has 3 fields, the header 2"),
        ("short.csv", "x0,x1\n1\n", "record 1 has 1 fields, the header 2"),
    ],
)
def test_unreadable_input_is_an_input_error(tmp_path, name, content, message) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_records(path)


def test_csv_results_have_fixed_columns_then_variables_then_errors(tmp_path) -> None:
    path = tmp_path / "results.csv"
    write_results(RESULTS, path)
    with path.open(newline="") as stream:
        reader = csv.DictReader(stream)
        rows = list(reader)
    assert reader.fieldnames == ["row", "business_outcome", "phat", "x12", "x31_asia", "error_field", "error_message"]
    assert rows[0] == {"row": "0", "business_outcome": "1", "phat": "0.30000000000000004", "x12": "-0.25",
                       "x31_asia": "1.0", "error_field": "", "error_message": ""}  # fmt: skip
    assert rows[1] == {"row": "1", "business_outcome": "", "phat": "", "x12": "", "x31_asia": "",
                       "error_field": "x12", "error_message": "cannot parse 'abc' as a number"}  # fmt: skip
    assert float(rows[2]["phat"]) == 1e-17
    assert list(tmp_path.iterdir()) == [path]


def test_json_results_are_the_list_as_returned(tmp_path) -> None:
    path = tmp_path / "results.json"
    write_results(RESULTS, path)
    assert json.loads(path.read_text()) == RESULTS


def test_json_lines_hold_one_result_per_line() -> None:
    stream = io.StringIO()
    write_json_lines(RESULTS, stream)
    assert [json.loads(line) for line in stream.getvalue().splitlines()] == RESULTS


def test_csv_of_no_results_is_just_the_header() -> None:
    stream = io.StringIO()
    write_csv_results([], stream)
    assert stream.getvalue() == "row,business_outcome,phat,error_field,error_message\n"


def test_the_output_format_follows_the_extension(tmp_path) -> None:
    assert [output_format(tmp_path / name) for name in ("a.csv", "b.JSON", "c.jsonl")] == ["csv", "json", "jsonl"]
    with pytest.raises(InputError, match="cannot tell the output format"):
        output_format(tmp_path / "results.xlsx")
