"""bench.compare: its building blocks in process, and a quick run of the real script."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bench.agreement import Agreement
from bench.baseline import naive_rows
from bench.compare import Row, real_records, table
from bench.memory import tree_memory
from stack.processes import ROOT
from tests.signals import default_sigint
from training.scoring import score_records


def test_the_baseline_answers_the_rows_the_project_answers(reference, approved) -> None:
    records = real_records(600)
    baseline = naive_rows(reference, approved[-1], records, reference["threshold"])
    project = score_records(approved, records, reference["threshold"])
    assert [list(row) for row in baseline] == [list(row) for row in project]
    assert max(abs(b[key] - p[key]) for b, p in zip(baseline, project) for key in p) <= 1e-12
    assert {row["business_outcome"] for row in baseline} == {0, 1}


def test_records_cycle_the_real_rows_with_real_money_values() -> None:
    records = real_records(12)
    assert records[0]["x5"] == records[6]["x5"] == "tuesday"
    assert records[0]["x12"] == "$6,882.34 " and records[2]["x12"] == "($5,032.58)"
    assert len({record["x12"] for record in records}) == 12
    assert all(len(record) == 100 for record in records)


def test_agreement_flags_a_phat_beyond_the_tolerance() -> None:
    agreement = Agreement(np.array([0.25, 0.75]), np.array([0, 1]))
    agreement.check("project", 0, [{"phat": 0.25, "business_outcome": 0, "row": 0}])
    agreement.check("baseline", 1, [{"phat": 0.75, "business_outcome": 1, "row": 0}])
    assert agreement.ok()
    agreement.check("project", 1, [{"phat": 0.75 + 1e-9, "business_outcome": 1, "row": 0}])
    assert not agreement.ok()
    assert agreement.report()[-1].startswith("agreement FAILED")


def test_agreement_flags_an_error_row_and_a_wrong_outcome() -> None:
    agreement = Agreement(np.array([0.25, 0.75]), np.array([0, 1]))
    agreement.check("project", 0, [{"phat": 0.25, "business_outcome": 1, "row": 0}, {"error": {}, "row": 1}])
    assert not agreement.ok()
    assert any("business_outcome" in line for line in agreement.problems)
    assert any("without phat" in line for line in agreement.problems)


def test_table_is_markdown_with_a_ratio_per_compared_row() -> None:
    lines = table([Row("1 record", "p50 ms", 5.0, 10.0, "lower"), Row("floor", "ms", 97.0)])
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert cells[0][4] == "project/baseline"
    assert cells[2][2:5] == ["5.00", "10.0", "0.50"]
    assert cells[3][3] == cells[3][4] == "\N{EN DASH}"


def test_tree_memory_reads_pss_of_a_process_and_its_children() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        tree = tree_memory(os.getpid())
        assert tree[0].pid == os.getpid() and tree[0].depth == 0 and tree[0].pss_kib > 0
        assert any(proc.pid == child.pid and proc.depth == 1 for proc in tree)
    finally:
        child.kill()
        child.wait()


def _table(stdout: str) -> dict[tuple[str, str], list[str]]:
    rows = [line for line in stdout.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]
    return {(cell[0], cell[1]): cell[2:] for cell in cells}


@pytest.mark.integration
@pytest.mark.slow
def test_a_quick_run_prints_the_table_and_both_sides_agree() -> None:
    command = [sys.executable, "-m", "bench.compare", "--quick", "--scenarios", "single,memory"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = _table(run.stdout)
    project, baseline, ratio, better = rows[("1 record, one client, 30 in a row", "p50 ms")]
    assert float(project) > 0 and float(baseline) > 0 and better == "lower"
    assert float(ratio) == pytest.approx(float(project) / float(baseline), rel=0.1)
    assert ("PSS memory, at start, idle", "MiB per API server process (mean of 2)") in rows
    assert ("PSS memory, after the run", "MiB per API server process (mean of 2)") in rows
    assert "machine load (1/5/15 min): start" in run.stdout
    differences = re.findall(r"max \|phat - in-process\| = (\S+)", run.stdout)
    assert len(differences) == 2 and all(float(diff) <= 1e-12 for diff in differences)
    assert "agreement OK" in run.stdout


@pytest.mark.integration
@pytest.mark.slow
def test_an_interrupted_run_stops_every_process_it_started() -> None:
    command = [sys.executable, "-m", "bench.compare", "--scenarios", "concurrent"]
    bench = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    )
    try:
        first = bench.stdout.readline()
        folder = re.search(r"in (/\S+) \.\.\.", first).group(1)
        assert bench.stdout.readline().startswith("== concurrent")
        started = _processes_mentioning(folder)
        assert started
        # One session for all: the scheduler's autogroups would otherwise favour the side with more sessions.
        assert {os.getsid(pid) for pid in started} == {os.getsid(bench.pid)}
        bench.send_signal(signal.SIGINT)
        assert bench.wait(120) == 130
    finally:
        bench.kill()
        bench.communicate()
    deadline = time.monotonic() + 10
    while _processes_mentioning(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_mentioning(folder) == []
    assert not Path(folder).exists()


def _processes_mentioning(text: str) -> list[int]:
    """Return the live processes whose command line or environment holds `text`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if "State:\tZ" in (proc / "status").read_text():
                continue
            if any(text.encode() in (proc / part).read_bytes() for part in ("cmdline", "environ")):
                found.append(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
    return found
