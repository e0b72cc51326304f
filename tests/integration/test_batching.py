"""Micro-batching through the real stack: small jobs from many clients, scored in one pipeline call."""

from __future__ import annotations

import re
import time

import pytest
import requests

from stack.processes import start_worker
from tests.conftest import BROKERS
from training.scoring import score_records

pytestmark = pytest.mark.integration
BATCH_DB = 7


@pytest.fixture
def idle_db() -> int:
    return BATCH_DB


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_small_jobs_in_line_are_scored_together_each_with_its_own_threshold_and_errors(
    idle_api, approved, real_rows, tmp_path
) -> None:
    url, env = idle_api
    records = [r["values"] for r in real_rows["rows"]]
    jobs = [([records[i % len(records)]], 0.5) for i in range(24)]
    jobs.append(([records[0], {**records[1], "x12": "not money"}, records[2]], 0.0))  # one bad row
    jobs.append((records[:5], 1.0))
    task_ids = []
    for batch, threshold in jobs:
        response = requests.post(f"{url}/predict?threshold={threshold}", json=batch, timeout=30)
        assert response.status_code == 202, response.text
        task_ids.append(response.json()["task_id"])

    worker = start_worker(env, tmp_path, name="batcher", concurrency=1)
    try:
        final = {}
        deadline = time.monotonic() + 60
        for task_id in task_ids:
            while (body := requests.get(f"{url}/tasks/{task_id}", timeout=30).json())["status"] != "succeeded":
                assert time.monotonic() < deadline, body
                time.sleep(0.05)
            final[task_id] = body
    finally:
        worker.stop()

    for task_id, (batch, threshold) in zip(task_ids, jobs, strict=True):
        expected = score_records(approved, batch, threshold)
        got = final[task_id]["results"]
        assert [row.get("error") for row in got] == [row.get("error") for row in expected]
        assert [row.get("business_outcome") for row in got] == [row.get("business_outcome") for row in expected]
        assert [row["row"] for row in got] == list(range(len(batch)))
        assert all(abs(a.get("phat", 0) - b.get("phat", 0)) <= 1e-12 for a, b in zip(got, expected, strict=True))
    assert final[task_ids[24]]["results"][1]["error"]["field"] == "x12"  # the bad row fails alone

    # Every job was scored exactly once, and they went in far fewer pipeline calls than jobs.
    batches = re.findall(r"scored a micro-batch of (\d+) jobs, \d+ rows: ([0-9a-f ]+)", worker.log_path.read_text())
    scored = [job for _, ids in batches for job in ids.split()]
    assert sorted(scored) == sorted(task_ids)
    assert len(batches) < len(task_ids) / 4, batches
