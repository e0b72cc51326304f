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
