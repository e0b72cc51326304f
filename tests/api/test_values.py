"""Over-long values: replaced in their place by a marker that the worker's parser reports for the row."""

import msgspec

from api import values
from api.batches import decode_records, decoders_for
from training import parsing
from training.parsing import RecordParser

FIELDS = ("x12", "x5")


def capped(body: bytes, max_chars: int) -> tuple[list, int]:
    records = decode_records(body, decoders_for(FIELDS))
    replaced = values.cap_values(records, len(FIELDS), max_chars)
    return msgspec.to_builtins(records), replaced


def test_a_value_over_the_cap_is_replaced_and_the_others_kept() -> None:
    body = msgspec.json.encode(
        [
            {"x12": "$1.00", "x5": "m" * 8},
            {"x12": "1" * 9, "x5": "monday", "x99": "z" * 100},  # x99 is not the model's: never stored
            {"x12": ["a", "b", "c"], "x5": {"k": 1}},  # nested values count as the JSON they came as
            {"x12": 12345678901234, "x5": None},
        ]
    )
    records, replaced = capped(body, 8)
    marker = {values.TOO_LONG: 8}
    assert records == [
        {"x12": "$1.00", "x5": "m" * 8},
        {"x12": marker, "x5": "monday"},
        {"x12": marker, "x5": {"k": 1}},
        {"x12": 12345678901234, "x5": None},
    ]
    assert replaced == 2


def test_the_parser_reports_the_marker_in_its_row_and_field() -> None:
    assert values.TOO_LONG == parsing.TOO_LONG  # the API cannot import training (numpy): the two are held equal here
    records, _ = capped(
        msgspec.json.encode([{"x12": "$1.00", "x5": "monday"}, {"x12": "9" * 300, "x5": "x" * 300}]), 256
    )
    parser = RecordParser(numeric=["x12"], categorical=["x5"]).fit(records)
    _, errors = parser.parse(records)
    assert [(e.row, e.field, e.message) for e in errors] == [
        (1, "x12", "longer than 256 characters"),
        (1, "x5", "longer than 256 characters"),
    ]


def test_a_client_object_that_only_looks_like_the_marker_is_reported_as_an_object() -> None:
    parser = RecordParser(numeric=["x12"], categorical=["x5"]).fit([])
    _, errors = parser.parse([{"x12": {values.TOO_LONG: "8"}, "x5": {"a": 1}}])
    assert [e.message for e in errors] == ["expected a number, got object", "expected a string, got object"]
