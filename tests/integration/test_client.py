"""The client and its command line against the real stack: CSV in, results out, equal to in-process scoring."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from client import ClientError, PredictionClient
from client.files import read_records
from training.scoring import score_records
from training.synth import synthesize

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def raw_records(path: Path) -> list[dict[str, Any]]:
    """Read a CSV the way the client promises to: raw strings, None for empty cells, no label."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns="y")
    return [{name: value or None for name, value in row.items()} for row in frame.to_dict("records")]


def in_process(approved, records, threshold=0.712) -> list[dict[str, Any]]:
    """Score in this process, then round-trip through JSON as the service does."""
    return json.loads(json.dumps(score_records(approved, records, threshold)))


@pytest.fixture(scope="module")
def ten_thousand_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,000 synthetic rows with their label `y`, which the client must drop."""
    path = tmp_path_factory.mktemp("client") / "ten_thousand.csv"
    synthesize(10_000, seed=2026).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def small_csv(ten_thousand_csv: Path) -> Path:
    path = ten_thousand_csv.with_name("small.csv")
    pd.read_csv(ten_thousand_csv, dtype=str, keep_default_na=False).head(2_500).to_csv(path, index=False)
    return path


@pytest.fixture
def client(stack) -> Iterator[PredictionClient]:
    with PredictionClient(stack.url, backoff=0.05) as client:
        yield client


def test_a_csv_scores_as_in_process_with_progress_to_the_total(client, approved, ten_thousand_csv) -> None:
    records = read_records(ten_thousand_csv)
    assert records == raw_records(ten_thousand_csv)
    assert all("y" not in record for record in records)
    assert any(record["x12"].endswith(" ") for record in records if record["x12"])  # raw money survived
    calls: list[tuple[int, int]] = []
    results = client.predict(records, on_progress=lambda done, rows: calls.append((done, rows)), poll_interval=0.02)
    assert results == in_process(approved, records)
    done = [call[0] for call in calls]
    assert done == sorted(done) and calls[-1] == (10_000, 10_000)
    assert {call[1] for call in calls} == {10_000}


def test_batch_rows_keeps_global_row_numbers(client, approved, small_csv) -> None:
    records = read_records(small_csv)
    calls: list[tuple[int, int]] = []
    results = client.predict(records, batch_rows=1_000, on_progress=lambda *call: calls.append(call))
    assert [item["row"] for item in results] == list(range(2_500))
    assert results == in_process(approved, records)
    assert calls[-1] == (2_500, 2_500)
    assert [call[0] for call in calls] == sorted({call[0] for call in calls})


def test_a_threshold_override_applies(client, approved, small_csv) -> None:
    records = read_records(small_csv)[:200]
    assert client.predict(records, threshold=0.3) == in_process(approved, records, 0.3)


def test_a_refused_threshold_is_a_client_error(client, small_csv) -> None:
    with pytest.raises(ClientError) as caught:
        client.submit(read_records(small_csv)[:1], threshold=7)
    assert str(caught.value) == "422 invalid_threshold: threshold must be a number between 0 and 1."


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("API_KEY", "PREDICT_URL")}
    env["PYTHONPATH"] = str(ROOT)
    command = [sys.executable, "-m", "client", "predict", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_cli_scores_ten_thousand_rows_into_a_csv(stack, approved, ten_thousand_csv, tmp_path) -> None:
    out = tmp_path / "results.csv"
    done = run_cli(str(ten_thousand_csv), "--url", stack.url, "--out", str(out), "--batch-rows", "4000")
    assert done.returncode == 0, done.stderr
    assert "10000/10000" in done.stderr
    assert "rows with errors" in done.stderr
    expected = in_process(approved, raw_records(ten_thousand_csv))
    with out.open(newline="") as stream:
        reader = csv.DictReader(stream)
        got = list(reader)
    variables = sorted(set(expected[0]) - {"row", "business_outcome", "phat"})
    assert reader.fieldnames == ["row", "business_outcome", "phat", *variables, "error_field", "error_message"]
    assert len(got) == len(expected) == 10_000
    assert [int(row["row"]) for row in got] == list(range(10_000))
    assert [int(row["business_outcome"]) for row in got] == [item["business_outcome"] for item in expected]
    worst = max(abs(float(row[name]) - item[name]) for row, item in zip(got, expected) for name in ["phat", *variables])
    assert worst <= 1e-12
    errors = sum(bool(row["error_field"]) for row in got)
    events = sum(item["business_outcome"] for item in expected)
    assert f"{10_000 - errors} rows scored, {errors} rows with errors, {events} events (business_outcome 1)" in (
        done.stderr
    )


def test_the_cli_exits_2_with_a_readable_message_on_a_4xx(stack, small_csv, tmp_path) -> None:
    out = tmp_path / "results.csv"
    done = run_cli(str(small_csv), "--url", stack.url, "--threshold", "7", "--out", str(out))
    assert done.returncode == 2
    assert "error: 422 invalid_threshold: threshold must be a number between 0 and 1." in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


@pytest.fixture
def limited_api(stack, tmp_path) -> Iterator[str]:
    """A second API on the stack's Redis and workers that takes at most 1,000 rows per job."""
    from stack.processes import free_port, start_api

    bind = f"127.0.0.1:{free_port()}"
    api = start_api({**stack.env, "MAX_BATCH_ROWS": "1000"}, tmp_path, bind)
    yield f"http://{bind}"
    api.stop()


@pytest.mark.parametrize("out", ["results.csv", "results.json"])
def test_the_cli_splits_a_file_over_the_row_limit_and_joins_the_results_in_order(
    limited_api, approved, small_csv, tmp_path, out
) -> None:
    """2,500 rows against a 1,000-row limit: three jobs, one file of results in input order, equal to in-process."""
    done = run_cli(str(small_csv), "--url", limited_api, "--out", str(tmp_path / out))
    assert done.returncode == 0, done.stderr
    assert "the service takes at most 1000 rows per job; splitting the input" in done.stderr
    assert "2500 rows scored" in done.stderr
    expected = in_process(approved, raw_records(small_csv))
    if out.endswith(".csv"):
        with (tmp_path / out).open(newline="") as stream:
            got = [{"row": int(r["row"]), "phat": float(r["phat"])} for r in csv.DictReader(stream)]
    else:
        got = json.loads((tmp_path / out).read_text())
    assert [row["row"] for row in got] == list(range(2_500))
    assert max(abs(row["phat"] - item["phat"]) for row, item in zip(got, expected)) <= 1e-12


def test_the_cli_reports_a_service_without_webhooks_readably(stack, tmp_path) -> None:
    records = tmp_path / "records.json"
    records.write_text(json.dumps([{"x5": "monday"}]))
    done = run_cli(str(records), "--url", stack.url, "--webhook-url", "https://hooks.example.com/glmq")
    assert done.returncode == 2, done.stderr
    assert "error: 422 webhooks_disabled: This service signs no webhooks" in done.stderr
    assert "hint: this service sends no webhooks: leave --webhook-url out" in done.stderr
