"""`python -m client predict`, run in process against a real HTTP server that answers from a script."""

from __future__ import annotations

import json
import socket

import pytest

from client.__main__ import main
from tests.client.scripted import Reply, ScriptedServer, accepted, error

CSV = 'x12,x63,y\n"$6,882.34 ",62.59%,1\n"($5,032.58)",,0\n'
RESULTS = [
    {"business_outcome": 1, "phat": 0.8, "row": 0, "x12": 1.25},
    {"error": {"field": "x63", "message": "cannot parse 'z' as a number"}, "row": 1},
]


@pytest.fixture(autouse=True)
def no_key_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("API_KEY", raising=False)
    monkeypatch.delenv("PREDICT_URL", raising=False)


@pytest.fixture
def input_csv(tmp_path):
    path = tmp_path / "input.csv"
    path.write_text(CSV)
    return path


def succeeded(rows: int, results: list) -> Reply:
    return Reply(200, {"task_id": "a" * 32, "status": "succeeded", "rows": rows, "rows_done": rows,
                       "model": {"name": "glm26", "version": 1}, "threshold": 0.712, "submitted_at": "t0",
                       "finished_at": "t1", "results": results})  # fmt: skip


def test_scores_a_csv_to_json_lines_with_a_summary(server: ScriptedServer, input_csv, capsys) -> None:
    server.script(accepted(rows=2), succeeded(2, RESULTS))
    assert main(["predict", str(input_csv), "--url", server.url, "--api-key", "k1"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == RESULTS
    assert server.seen[0].json() == [{"x12": "$6,882.34 ", "x63": "62.59%"}, {"x12": "($5,032.58)", "x63": None}]
    assert server.seen[0].headers["Authorization"] == "Bearer k1"
    assert "2/2" in err  # the progress bar
    assert "1 rows scored, 1 rows with errors, 1 events (business_outcome 1)" in err


def test_writes_the_results_file_named_by_out(server: ScriptedServer, input_csv, tmp_path, capsys) -> None:
    server.script(accepted(rows=2), succeeded(2, RESULTS))
    out_path = tmp_path / "results.json"
    assert main(["predict", str(input_csv), "--url", server.url, "--out", str(out_path)]) == 0
    assert json.loads(out_path.read_text()) == RESULTS
    assert f"results in {out_path}" in capsys.readouterr().err


def test_a_refused_request_exits_2_with_the_readable_message(server: ScriptedServer, input_csv, capsys) -> None:
    message = "threshold must be a number between 0 and 1."
    server.script(error(422, "invalid_threshold", message, {"threshold": "7.0"}))
    assert main(["predict", str(input_csv), "--url", server.url, "--threshold", "7"]) == 2
    err = capsys.readouterr().err
    assert f"error: 422 invalid_threshold: {message}\n" in err
    assert 'details: {"threshold": "7.0"}' in err
    assert "Traceback" not in err
    assert len(server.seen) == 1


def test_a_failed_job_exits_1(server: ScriptedServer, input_csv, capsys) -> None:
    failed = Reply(200, {"task_id": "a" * 32, "status": "failed", "rows": 2, "rows_done": 0,
                         "model": {"name": "glm26", "version": 1}, "threshold": 0.712, "submitted_at": "t0",
                         "error": {"code": "job_failed", "message": "deadline passed"}})  # fmt: skip
    server.script(accepted(rows=2), failed)
    assert main(["predict", str(input_csv), "--url", server.url]) == 1
    assert f"error: task {'a' * 32} failed (job_failed): deadline passed" in capsys.readouterr().err


def test_an_unreachable_service_exits_3(input_csv, capsys) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["predict", str(input_csv), "--url", f"http://127.0.0.1:{port}", "--retries", "0"]) == 3
    assert f"error: cannot reach http://127.0.0.1:{port} after 1 attempt: " in capsys.readouterr().err


def test_an_unknown_output_extension_exits_2_before_sending(server, input_csv, tmp_path, capsys) -> None:
    server.script(accepted())
    assert main(["predict", str(input_csv), "--url", server.url, "--out", str(tmp_path / "r.xlsx")]) == 2
    assert "cannot tell the output format" in capsys.readouterr().err
    assert server.seen == []


SERVED_CSV = (
    "business_outcome,error_field,error_message,phat,row\r\n1,,,0.8,0\r\n,x63,\"cannot parse 'z', a number\",,1\r\n"
)


def streamed_service(seen) -> Reply:
    """Answer the streamed path: the upload, a status with one result, and the results as CSV."""
    if seen.method == "POST":
        return accepted(rows=2)
    if seen.path.split("?")[0].endswith("/results"):
        return Reply(200, SERVED_CSV)
    return succeeded(2, RESULTS[:1])


def test_a_csv_goes_up_as_it_is_and_the_results_come_down_streamed(server, input_csv, tmp_path, capsys) -> None:
    server.script(streamed_service)
    out = tmp_path / "results.csv"
    argv = ["predict", str(input_csv), "--url", server.url, "--out", str(out), "--fields", "phat,business_outcome"]
    assert main([*argv, "--explain", "--id-field", "x12"]) == 0
    upload, *_, download = server.seen
    assert (upload.body.decode(), upload.headers["Content-Type"]) == (CSV, "text/csv")
    assert "fields=phat%2Cbusiness_outcome&explain=true&id_field=x12" in upload.path
    assert (download.path, download.headers["Accept"]) == (f"/tasks/{'a' * 32}/results", "text/csv")
    assert out.read_bytes() == SERVED_CSV.encode()
    assert list(tmp_path.glob(".*part")) == []
    assert "1 rows scored, 1 rows with errors, 1 events (business_outcome 1)" in capsys.readouterr().err


def test_a_failed_streamed_job_leaves_no_results_file(server, input_csv, tmp_path) -> None:
    failed = Reply(200, {**succeeded(2, []).body, "status": "failed", "error": {"code": "job_failed", "message": "x"}})
    server.script(accepted(rows=2), failed)
    out = tmp_path / "results.csv"
    assert main(["predict", str(input_csv), "--url", server.url, "--out", str(out)]) == 1
    assert not out.exists() and list(tmp_path.glob(".*part")) == []
    assert server.paths()[-1] == f"DELETE /tasks/{'a' * 32}"


def test_more_rows_than_the_service_takes_fall_back_to_reading_the_file(server, input_csv, tmp_path) -> None:
    too_many = error(413, "too_many_rows", "At most 1 records per request.", {"max_rows": 1})
    one = succeeded(1, [{"business_outcome": 1, "phat": 0.8, "row": 0}])
    server.script(too_many, accepted(rows=1), accepted("b" * 32, rows=1), one, one)
    out = tmp_path / "results.csv"
    assert main(["predict", str(input_csv), "--url", server.url, "--out", str(out)]) == 0
    assert [seen.headers["Content-Type"] for seen in server.seen if seen.method == "POST"] == [
        "text/csv", "application/json", "application/json"
    ]  # fmt: skip
    assert [line.split(",")[0] for line in out.read_text().splitlines()] == ["row", "0", "1"]
