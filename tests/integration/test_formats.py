"""CSV, NDJSON and JSON through the real stack: the same scores bit for bit, streamed downloads, hostile files."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    names = list(dict.fromkeys(name for row in rows for name in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, names, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({name: "" if row.get(name) is None else row[name] for name in names} for row in rows)
    return out.getvalue().encode()


def as_ndjson(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


@pytest.fixture(scope="module")
def rows(real_rows) -> list[dict[str, Any]]:
    # A missing value is written as an empty cell in CSV and as null in JSON: both are missing.
    return [{"key": row["id"], **row["values"]} for row in real_rows["rows"]]


def score(stack, body: bytes, content_type: str, query: str = "", **headers: str) -> str:
    response = requests.post(
        f"{stack.url}/predict{query}", data=body, headers={"Content-Type": content_type, **headers}, timeout=60
    )
    assert response.status_code == 202, response.text
    task_id = response.json()["task_id"]
    assert stack.wait(task_id)["status"] == "succeeded"
    return task_id


def download(stack, task_id: str, accept: str) -> requests.Response:
    response = requests.get(f"{stack.url}/tasks/{task_id}/results", headers={"Accept": accept}, timeout=60)
    assert response.status_code == 200, response.text
    return response


def test_the_same_rows_score_bit_for_bit_alike_in_every_format(stack, rows) -> None:
    # One job at a time, so that each is scored alone, in a batch of the same rows.
    uploads = {
        "json": score(stack, json.dumps(rows).encode(), "application/json", "?id_field=key"),
        "csv": score(stack, as_csv(rows), "text/csv", "?id_field=key"),
        "ndjson": score(stack, gzip.compress(as_ndjson(rows)), "application/x-ndjson", "?id_field=key",
                        **{"Content-Encoding": "gzip"}),
    }  # fmt: skip
    results = {kind: download(stack, task_id, "application/json").json() for kind, task_id in uploads.items()}
    assert results["csv"] == results["json"] == results["ndjson"]  # every float equal: bit for bit
    assert [item["id"] for item in results["csv"]] == [row["key"] for row in rows]
    scored = [item for item in results["json"] if "error" not in item]
    assert len(scored) >= 5
    streamed = download(stack, uploads["csv"], "text/csv").text
    table = list(csv.DictReader(io.StringIO(streamed, newline="")))
    assert [float(line["phat"]) for line in table if line["phat"]] == [item["phat"] for item in scored]
    lines = download(stack, uploads["json"], "application/x-ndjson").text.splitlines()
    assert [json.loads(line) for line in lines] == results["json"]


def test_the_command_line_sends_a_csv_as_it_is_and_writes_the_streamed_csv(stack, rows, tmp_path) -> None:
    source, out = tmp_path / "rows.csv", tmp_path / "results.csv"
    source.write_bytes(as_csv(rows * 350))  # 2,100 rows: two chunks of the stack's 2,000
    env = {key: value for key, value in os.environ.items() if key not in ("API_KEY", "PREDICT_URL")}
    command = [sys.executable, "-m", "client", "predict", str(source), "--url", stack.url, "--out", str(out),
               "--explain", "--fields", "phat,contributions,intercept", "--id-field", "key"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    table = list(csv.DictReader(io.StringIO(out.read_text(), newline="")))
    assert len(table) == 2_100 and [int(line["row"]) for line in table] == list(range(2_100))
    assert [line["id"] for line in table[: len(rows)]] == [row["key"] for row in rows]
    contributions = [name for name in table[0] if name.startswith("contrib_")]
    assert len(contributions) == 25
    assert "2100 rows scored, 0 rows with errors" in done.stderr


def zeros_gzip(size: int) -> bytes:
    pack = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([*(pack.compress(b"\0" * (1 << 20)) for _ in range(size >> 20)), pack.flush()])


HEADER = b"x5,x12,x31\r\n"
GZIP = {"Content-Encoding": "gzip"}
# name: (the body, built when the test runs; its content type and headers; the status and code expected)
HOSTILE: dict[str, tuple[Callable[[], bytes], str, dict[str, str], int, str]] = {
    "10,000 columns": (lambda: b",".join(b"c%d" % i for i in range(10_000)) + b"\n" + b"1," * 9_999 + b"1\n",
                       "text/csv", {}, 422, "too_many_columns"),
    "a 50 MB single cell": (lambda: HEADER + b"a" * 50_000_000 + b",1,asia\r\n", "text/csv", {}, 413,
                            "body_too_large"),  # the stack's limit is 40 MB
    "a 20 MB single cell": (lambda: HEADER + b"a" * 20_000_000 + b",1,asia\r\n", "text/csv", {}, 422,
                            "line_too_long"),
    "NUL bytes": (lambda: HEADER + b"mon\0day,1,asia\r\n", "text/csv", {}, 400, "malformed_csv"),
    "an NDJSON line of 10 MB": (lambda: b'{"x5": "' + b"a" * 10_000_000 + b'"}\n', "application/x-ndjson", {}, 422,
                                "line_too_long"),
    "gzip of 1 GB of zeros": (lambda: zeros_gzip(1 << 30), "text/csv", GZIP, 413, "body_too_large"),
    "truncated gzip": (lambda: gzip.compress(HEADER + b"monday,1,asia\r\n" * 1000)[:-20], "text/csv", GZIP, 400,
                       "malformed_gzip"),
    "CSV declared as JSON": (lambda: HEADER + b"monday,1,asia\r\n", "application/json", {}, 400, "malformed_json"),
    "JSON declared as CSV": (lambda: b'[{"x5": "monday"}]', "text/csv", {}, 400, "malformed_csv"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_file_gets_a_json_4xx_and_the_service_still_answers(stack, name) -> None:
    body, content_type, headers, status, code = HOSTILE[name]
    response = requests.post(
        f"{stack.url}/predict", data=body(), headers={"Content-Type": content_type, **headers}, timeout=60
    )
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    assert requests.get(f"{stack.url}/health", timeout=10).status_code == 200
    assert stack.score([{"x5": "monday", "x12": "$1.00"}])["status"] == "succeeded"


def test_mixed_line_endings_are_read_as_the_rows_they_are(stack) -> None:
    body = HEADER + b"monday,1,asia\nfriday,2,europe\rsunday,3,asia\r\n"
    task_id = score(stack, body, "text/csv")
    assert [item["row"] for item in download(stack, task_id, "application/json").json()] == [0, 1, 2]
