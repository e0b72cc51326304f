"""The CLI's progress through its real subprocess output: bytes while uploading, rows while scoring, one final line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tqdm import tqdm

from tests.integration.test_client import run_cli

pytestmark = pytest.mark.integration
RECORD = {"x12": "$1,000.00", "x31": "asia", "x5": "monday"}
ROWS = 20_000


def write_input(path: Path) -> int:
    """Write ROWS records in the file's format; return the bytes the CLI uploads for them."""
    if path.suffix == ".csv":  # sent as it is (the streamed path)
        path.write_text("x12,x31,x5\n" + '"$1,000.00",asia,monday\n' * ROWS)
        return path.stat().st_size
    path.write_text(json.dumps([RECORD] * ROWS))  # read, then sent as compact JSON
    return len(json.dumps([RECORD] * ROWS, separators=(",", ":")))


@pytest.mark.parametrize(("source", "out"), [("records.json", "out.jsonl"), ("records.csv", "out.csv")])
def test_the_cli_shows_bytes_then_rows_from_the_event_stream_and_one_final_line(stack, tmp_path, source, out) -> None:
    body_bytes = write_input(tmp_path / source)
    logged = len((stack.log_dir / "api.log").read_text())
    done = run_cli(str(tmp_path / source), "--url", stack.url, "--out", str(tmp_path / out))
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
