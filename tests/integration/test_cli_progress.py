"""The CLI's progress through its real subprocess output: bytes while uploading, rows while scoring, one final line."""

from __future__ import annotations

import json
import re

import pytest
from tqdm import tqdm

from tests.integration.test_client import run_cli

pytestmark = pytest.mark.integration
RECORD = {"x12": "$1,000.00", "x31": "asia", "x5": "monday"}
ROWS = 20_000


def test_the_cli_shows_bytes_then_rows_from_the_event_stream_and_one_final_line(stack, tmp_path) -> None:
    path = tmp_path / "records.json"
    path.write_text(json.dumps([RECORD] * ROWS))
    body_bytes = len(json.dumps([RECORD] * ROWS, separators=(",", ":")))
    logged = len((stack.log_dir / "api.log").read_text())
    done = run_cli(str(path), "--url", stack.url, "--out", str(tmp_path / "out.jsonl"))
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in re.split(r"[\r\n]+", done.stderr) if line.strip()]
    uploading = [line for line in lines if line.startswith("uploading:")]
    scoring = [line for line in lines if line.startswith("scoring:")]
    assert uploading and all(line.endswith("B/s]") for line in uploading)  # bytes, and first
    assert f"/{tqdm.format_sizeof(body_bytes, divisor=1024)} " in uploading[-1]
    assert lines.index(uploading[-1]) < lines.index(scoring[0])
    assert all(re.search(r"\d+/20000 .*row/s\]$", line) for line in scoring)  # then rows
    assert sum(f"{ROWS}/{ROWS}" in line for line in lines) == 1  # one final line, the bar's last
    assert scoring[-1].startswith("scoring: 100%") and lines[-2] == scoring[-1]
    assert lines[-1].startswith(f"{ROWS} rows scored, 0 rows with errors")
    access_log = (stack.log_dir / "api.log").read_text()[logged:]
    assert re.search(r'"GET /tasks/[0-9a-f]{32}/events HTTP/1.1" 200', access_log)  # the rows came from the stream
