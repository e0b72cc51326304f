"""CSV, NDJSON and gzip uploads on POST /predict: the records stored, the limits, and errors that name the line."""

import gzip
import json
import zlib

import pytest

from api.errors import ApiError
from api.formats import MAX_COLUMNS, MAX_LINE_BYTES, check_lines
from jobs import keys
from jobs.broker import QUEUE

FIELDS = ("x12", "x31", "x5", "x81", "x91")  # some of the GLM's input fields
CSV = "x5,x12,x31,x81,x91,x99\r\nsunday,$3709.93,asia,November,0.5,7\r\nmonday,,,May,1e-3,8\r\n"
STORED = [
    {"x12": "$3709.93", "x31": "asia", "x5": "sunday", "x81": "November", "x91": "0.5"},
    {"x5": "monday", "x81": "May", "x91": "1e-3"},
]


def post(client, body: bytes | str, content_type: str, query: str = "", **headers: str):
    return client.post(f"/predict{query}", data=body, content_type=content_type, headers=headers)


def stored(redis_db, task_id: str) -> list[dict]:
    chunks = int(redis_db.hget(keys.job(task_id), "chunks"))
    return [record for k in range(chunks) for record in json.loads(redis_db.get(keys.payload(task_id, k)))]


def accepted(response) -> str:
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["task_id"]


def test_a_csv_is_stored_as_the_records_json_would_give(client, redis_db) -> None:
    response = post(client, CSV, "text/csv")
    task_id = accepted(response)
    body = response.get_json()
    assert body["rows"] == 2
    assert body["warnings"][0]["fields"] == ["x99"]  # every row holds it
    assert [{k: v for k, v in r.items() if k in FIELDS} for r in stored(redis_db, task_id)] == STORED


def test_a_csv_with_a_bom_quoting_mixed_line_endings_and_blank_lines_is_read(client, redis_db) -> None:
    text = '\ufeffx5,x12,x31\n"sun\r\nday","$1,000.00",""\r\nmonday,"$2",asia\r\n\nfriday,"say ""hi""",x\r'
    task_id = accepted(post(client, text.encode(), "text/csv; charset=utf-8"))
    assert stored(redis_db, task_id) == [
        {"x5": "sun\r\nday", "x12": "$1,000.00"},
        {"x5": "monday", "x12": "$2", "x31": "asia"},
        {"x5": "friday", "x12": 'say "hi"', "x31": "x"},
    ]


def test_ndjson_is_stored_as_a_json_list_would_be(client, redis_db) -> None:
    lines = [json.dumps(record) for record in STORED]
    body = "\n\n" + lines[0] + "\r\n   \n" + lines[1]  # no final newline; blank lines skipped
    task_id = accepted(post(client, body, "application/x-ndjson"))
    assert stored(redis_db, task_id) == STORED


@pytest.mark.parametrize("content_type", ["text/csv", "application/x-ndjson", "application/json"])
def test_gzip_is_accepted_in_every_format(client, redis_db, content_type) -> None:
    body = {
        "text/csv": CSV,
        "application/x-ndjson": "\n".join(map(json.dumps, STORED)),
        "application/json": json.dumps(STORED),
    }[content_type]
    task_id = accepted(post(client, gzip.compress(body.encode()), content_type, **{"Content-Encoding": "gzip"}))
    assert [{k: v for k, v in r.items() if k in FIELDS} for r in stored(redis_db, task_id)] == STORED


def zeros_gzip(size: int) -> bytes:
    pack = zlib.compressobj(9, zlib.DEFLATED, 31)
    piece = b"\0" * (1 << 20)
    return b"".join([*(pack.compress(piece) for _ in range(size >> 20)), pack.flush()])


def test_a_gzip_bomb_stops_at_the_limit(client, redis_db, settings) -> None:
    bomb = zeros_gzip(16 << 20)  # 16 MiB of zeros in 16 KB (tests/integration sends 1 GiB)
    assert len(bomb) < settings.max_body_bytes / 20
    response = post(client, bomb, "text/csv", **{"Content-Encoding": "gzip"})
    assert response.status_code == 413
    assert response.get_json()["error"] == {
        "code": "body_too_large",
        "message": f"The body exceeds {settings.max_body_bytes} bytes once decompressed.",
        "details": {"max_bytes": settings.max_body_bytes},
    }
    assert redis_db.llen(QUEUE) == 0


@pytest.mark.parametrize(
    "body",
    [gzip.compress(CSV.encode())[:-6], gzip.compress(CSV.encode())[:15], b"plain text", gzip.compress(b"x") + b"junk"],
    ids=["truncated", "header only", "not gzip", "trailing junk"],
)
def test_bad_gzip_is_400(client, body) -> None:
    response = post(client, body, "text/csv", **{"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "malformed_gzip"


def test_other_encodings_are_415(client) -> None:
    response = post(client, CSV, "text/csv", **{"Content-Encoding": "br"})
    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_content_encoding"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "line"),
    [
        ("x5,x12\nsunday,1\nmonday\n", "text/csv", 400, "malformed_csv", 3),  # ragged
        ('x5,x12\nsunday,1\n"mon"day,2\n', "text/csv", 400, "malformed_csv", 3),  # broken quoting
        ('x5,x12\nsunday,1\n"monday,2\n', "text/csv", 400, "malformed_csv", 3),  # an unclosed quote
        (b"x5,x12\nsunday,1\nmon\xffday,2\n", "text/csv", 400, "malformed_csv", 3),  # bad UTF-8
        ("x5,x12\nsunday,1\nmon\0day,2\n", "text/csv", 400, "malformed_csv", 3),  # NUL
        ("x5,x5\nsunday,1\n", "text/csv", 400, "malformed_csv", 1),  # a column named twice
        ('{"x5": "sunday"}\n\n[{"x5": "monday"}]\n', "application/x-ndjson", 422, "invalid_record", 3),
        ('{"x5": "sunday"}\n42\n', "application/x-ndjson", 422, "invalid_record", 2),
        ('{"x5": "sunday"}\n{"x5": \n', "application/x-ndjson", 400, "malformed_ndjson", 2),
        ('{"x5": "sunday"}\n{"x12": NaN}\n', "application/x-ndjson", 422, "non_finite_number", 2),
        (b'{"x5": "sunday"}\n{"x5": "\xff"}\n', "application/x-ndjson", 400, "malformed_ndjson", 2),
        ('{"x5": "sunday"}\n{"x5": "a\0"}\n', "application/x-ndjson", 400, "malformed_ndjson", 2),
    ],
)
def test_malformed_input_names_the_line(client, redis_db, body, content_type, status, code, line) -> None:
    response = post(client, body, content_type)
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["details"]["line"] == line
    assert f"line {line}" in error["message"].lower()
    assert redis_db.llen(QUEUE) == 0


WIDE = ",".join(f"c{i}" for i in range(MAX_COLUMNS + 1)) + "\n" + "1," * MAX_COLUMNS + "1\n"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("", "text/csv", 400, "empty_body"),
        ("x5,x12\r\n", "text/csv", 422, "empty_batch"),
        ("\n \n", "application/x-ndjson", 400, "empty_body"),
        ("x5\n" + "sunday\n" * 1_001, "text/csv", 413, "too_many_rows"),
        ('{"x5": 1}\n' * 1_001, "application/x-ndjson", 413, "too_many_rows"),
        (WIDE, "text/csv", 422, "too_many_columns"),
        ("x5,x12\nsunday,1\n", "application/json", 400, "malformed_json"),  # CSV declared as JSON
        (json.dumps(STORED), "text/csv", 400, "malformed_csv"),  # JSON declared as CSV: ragged from line 1 on
        (json.dumps(STORED), "application/x-ndjson", 422, "invalid_record"),  # a JSON list is not an NDJSON object
    ],
)
def test_bad_uploads_get_a_json_error(client, redis_db, body, content_type, status, code) -> None:
    response = post(client, body, content_type)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == code
    assert redis_db.llen(QUEUE) == 0


@pytest.mark.parametrize("ending", [b"\n", b"\r", b"\r\n"])
def test_a_line_longer_than_the_cap_is_refused_whatever_the_line_endings(ending) -> None:
    short = ending.join([b"x" * 100] * 30_000)  # 3 MB of short lines pass
    check_lines(short, "CSV")
    long = short + ending + b"a" * (2 * MAX_LINE_BYTES + 1) + ending + short
    with pytest.raises(ApiError) as refused:
        check_lines(long, "CSV")
    assert (refused.value.status, refused.value.code) == (422, "line_too_long")
    assert refused.value.details["line"] == 30_001


def test_an_overlong_cell_in_a_model_field_is_a_row_error_not_a_request_error(client, redis_db) -> None:
    task_id = accepted(post(client, "x5,x12\n" + "a" * 300 + ",1\nmonday,2\n", "text/csv"))
    first, second = stored(redis_db, task_id)
    assert first["x5"] == {"$too_long": 256}
    assert second == {"x5": "monday", "x12": "2"}


def test_strict_marks_unknown_columns_in_every_csv_row_and_unknown_keys_per_ndjson_line(client, redis_db) -> None:
    task_id = accepted(post(client, CSV, "text/csv", "?strict=true"))
    assert [record["x99"] for record in stored(redis_db, task_id)] == [None, None]
    body = '{"x5": "sunday"}\n{"x5": "monday", "extra": 1}\n'
    task_id = accepted(post(client, body, "application/x-ndjson", "?strict=true"))
    assert stored(redis_db, task_id) == [{"x5": "sunday"}, {"x5": "monday", "extra": None}]


@pytest.mark.parametrize("content_type", ["text/csv", "application/x-ndjson", "application/json"])
def test_the_id_field_is_stored_with_each_record_null_where_absent(client, redis_db, content_type) -> None:
    rows = [{"key": "a-1", "x5": "sunday"}, {"x5": "monday"}, {"key": 7, "x5": "friday"}]
    body = {
        "text/csv": "key,x5\na-1,sunday\n,monday\n7,friday\n",
        "application/x-ndjson": "\n".join(map(json.dumps, rows)),
        "application/json": json.dumps(rows),
    }[content_type]
    response = post(client, body, content_type, "?id_field=key&strict=true")
    task_id = accepted(response)
    assert "warnings" not in response.get_json()  # the id field is not an unknown field
    ids = [record["$id"] for record in stored(redis_db, task_id)]
    assert ids == ["a-1", None, "7" if content_type == "text/csv" else 7]


def test_the_id_field_may_be_a_model_field(client, redis_db) -> None:
    task_id = accepted(post(client, "x5,x12\nsunday,1\n", "text/csv", "?id_field=x5"))
    assert stored(redis_db, task_id) == [{"x5": "sunday", "x12": "1", "$id": "sunday"}]


def test_an_id_field_missing_from_the_csv_header_is_422(client) -> None:
    response = post(client, CSV, "text/csv", "?id_field=key")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "unknown_id_field"
