"""Field names the model does not read: reported as warnings, or kept for the worker with ?strict=true."""

import json

import msgspec

from api.batches import decode_records, decoders_for
from api.fields import MAX_NAMES, SAMPLE_BYTES, mark_unknown, sample_unknown
from jobs import keys
from tests.api.test_routes import RECORD, post

FIELDS = ("x5", "x12")


def test_the_sample_names_unknown_fields_in_order_seen_with_a_count() -> None:
    rows = [{"x5": "monday", "x121": 1, "b": {"nested": 1}}, {"x12": "$1", "a": [1, 2]}, {"x121": 2}]
    unknown = sample_unknown(json.dumps(rows).encode(), FIELDS)
    assert (unknown.names, unknown.count, unknown.rows_read) == (("x121", "b", "a"), 3, 3)
    one = sample_unknown(b' {"instances": [{"x5": "monday"}]}', FIELDS)
    assert (one.names, one.count) == (("instances",), 1)


def test_the_sample_is_bounded_in_names_and_in_bytes() -> None:
    wide = [{f"c{i}": i for i in range(50)}] + [{"x5": "x" * 100, "late": 1}] * (SAMPLE_BYTES // 100)
    unknown = sample_unknown(json.dumps(wide).encode(), FIELDS)
    assert unknown.names == tuple(f"c{i}" for i in range(MAX_NAMES)) and unknown.count == 51
    assert unknown.rows_read < len(wide)
    huge_first_row = [{"x5": "y" * SAMPLE_BYTES, "big": 1}, {"after": 1}]
    assert sample_unknown(json.dumps(huge_first_row).encode(), FIELDS).names == ("big",)


def test_strict_keeps_the_unknown_names_of_each_row_as_nulls() -> None:
    body = json.dumps([{"x5": "monday", "x121": "$1"}, {"x12": None}, {"foo": 1}]).encode()
    records = decode_records(body, decoders_for(FIELDS))
    marked, unknown = mark_unknown(body, records, FIELDS)
    assert msgspec.to_builtins(marked) == [{"x5": "monday", "x121": None}, {"x12": None}, {"foo": None}]
    assert (unknown.names, unknown.count, unknown.rows_read) == (("x121", "foo"), 2, 3)
    clean = json.dumps({"x5": "monday"}).encode()
    assert mark_unknown(clean, decode_records(clean, decoders_for(FIELDS)), FIELDS)[1].count == 0


def test_a_misspelled_field_is_warned_of_on_acceptance_and_in_the_status(client, redis_db) -> None:
    response = post(client, [dict(RECORD, x121="$1,000.00", X5="monday"), {"foo": 1}])
    assert response.status_code == 202
    (warning,) = response.get_json()["warnings"]
    assert warning["code"] == "unknown_fields"
    assert (warning["fields"], warning["count"]) == (["x121", "X5", "foo"], 3)
    assert "x121, X5, foo" in warning["message"] and "ignored" in warning["message"]
    task = client.get(response.get_json()["status_url"]).get_json()
    assert task["warnings"] == [warning]
    # The fields the model does not read never reach the workers.
    stored = json.loads(redis_db.get(keys.payload(task["task_id"], 0)))
    assert stored == [RECORD, {}]


def test_no_warning_when_every_field_is_read(client) -> None:
    response = post(client, [RECORD, {"x5": None}])
    assert "warnings" not in response.get_json()
    assert "warnings" not in client.get(response.get_json()["status_url"]).get_json()


def test_strict_keeps_unknown_names_for_the_worker_and_says_so(client, redis_db) -> None:
    response = post(client, [RECORD, dict(RECORD, x121="$1")], query="?strict=true")
    assert response.status_code == 202
    (warning,) = response.get_json()["warnings"]
    assert warning["fields"] == ["x121"] and "strict" in warning["message"]
    task_id = response.get_json()["task_id"]
    assert redis_db.hget(keys.job(task_id), "strict") == b"True"
    assert json.loads(redis_db.get(keys.payload(task_id, 0))) == [RECORD, dict(RECORD, x121=None)]


def test_strict_must_be_true_or_false(client) -> None:
    response = post(client, RECORD, query="?strict=maybe")
    assert response.status_code == 422
    assert response.get_json()["error"] == {
        "code": "invalid_strict", "message": "strict must be true or false.", "details": {"strict": "maybe"},
    }  # fmt: skip
    assert post(client, RECORD, query="?strict=false").status_code == 202
