"""Decoding a request body: one fast pass, and on failure the code of the first problem in the body."""

import msgspec
import pytest

from api.batches import decode_records, decoders_for
from api.errors import ApiError

DECODERS = decoders_for(("x12", "x5"))


def refusal(body: bytes) -> ApiError:
    with pytest.raises(ApiError) as caught:
        decode_records(body, DECODERS)
    return caught.value


def test_records_keep_only_the_model_fields_in_one_object_or_a_list() -> None:
    row = b'{"x12": "$1.00", "x5": null, "x99": [1, {"deep": true}], "unused": 1e999}'
    # A null stays a field the row holds (a missing value); an absent field stays absent.
    assert msgspec.to_builtins(decode_records(b" \n" + row, DECODERS)) == [{"x12": "$1.00", "x5": None}]
    many = decode_records(b"[" + row + b', {"x12": [1], "x5": "monday"}, {"x99": 1}]', DECODERS)
    # A value of the wrong type is not the request's fault: the model reports it in its row's result.
    assert msgspec.to_builtins(many) == [{"x12": "$1.00", "x5": None}, {"x12": [1], "x5": "monday"}, {}]


@pytest.mark.parametrize(
    ("body", "status", "code", "details"),
    [
        (b"", 400, "empty_body", None),
        (b" \r\n\t", 400, "empty_body", None),
        (b'{"x12": 1', 400, "malformed_json", None),
        (b"nul", 400, "malformed_json", None),
        (b"[1, 2", 422, "invalid_record", {"row": 0}),  # the first element fails before the end is read
        (b"true", 422, "invalid_shape", None),
        (b'  "text"', 422, "invalid_shape", None),
        (b"NaN", 422, "non_finite_number", None),
        (b'{"unused": -Infinity}', 422, "non_finite_number", None),  # no JSON parser reads it: always refused
        (b'[{"x12": 1}, {"x12": 1e999}]', 422, "non_finite_number", {"row": 1, "field": "x12"}),
        (b'{"x5": "monday", "x12": -1e400}', 422, "non_finite_number", {"field": "x12"}),
        (b'[{"x5": 1' + b"0" * 5000 + b"}]", 422, "non_finite_number", {"row": 0, "field": "x5"}),
        (b'{"x12": 1e999, "x12": 1}', 422, "non_finite_number", {"field": "x12"}),  # as the fast pass reads keys
        (b'[{"x12": 1}, 3]', 422, "invalid_record", {"row": 1}),
        (b'[{"x12": 1e999}, "text"]', 422, "non_finite_number", {"row": 0, "field": "x12"}),  # the first problem
        (b'[{"x12": 1}, "text", {"x12": NaN}]', 422, "invalid_record", {"row": 1}),  # even if the rest is broken
        (b'[{"x12": 1}, {"x12": -1e999, "x5": NaN}]', 422, "non_finite_number", {"row": 1, "field": "x12"}),
        (b'[{"x12": 1}, {"x12": 1e999, "x5": }]', 422, "non_finite_number", {"row": 1, "field": "x12"}),
        (b'[{"x12": 1}, 3, {"x12": ', 422, "invalid_record", {"row": 1}),
        (b'[{"x12": 1}, {"x12": ', 400, "malformed_json", None),
        (b"[" * 100_000 + b"]" * 100_000, 422, "invalid_record", {"row": 0}),
        (b'[{"x12": 1}, ' + b"[" * 100_000 + b"]" * 100_000 + b"]", 422, "invalid_record", {"row": 1}),
        (b'[{"x12": 1}, {"unused": ' + b"[" * 5_000 + b"]" * 5_000 + b"}]", 422, "too_deeply_nested", None),
        (b'{"x12": ' + b"[" * 5_000 + b"]" * 5_000 + b"}", 422, "too_deeply_nested", None),
    ],
)
def test_a_bad_body_gets_the_code_of_its_first_problem(body, status, code, details) -> None:
    error = refusal(body)
    assert (error.status, error.code, error.details) == (status, code, details)
    assert error.message


def test_invalid_utf8_is_refused_even_in_a_field_the_model_does_not_read() -> None:
    error = refusal(b'{"unused": "\xff"}')
    assert (error.status, error.code) == (400, "malformed_json")
    assert "UTF-8" in error.message
