"""Cancelling: a cancelled job's chunks are skipped when a worker starts, and a running one keeps what it scored."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from jobs import keys
from jobs.broker import make_celery, queue_depth
from settings import Settings
from stack.processes import ROOT, Process, start_worker, wait_until
from tests.conftest import BROKERS
from tests.signals import default_sigint

pytestmark = pytest.mark.integration
CANCEL_DB = 4
RECORD = {"x12": "$1,000.00", "x31": "asia"}


@pytest.fixture
def idle_db() -> int:
    return CANCEL_DB


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
def test_a_cancelled_job_is_never_scored(idle_api, redis_server, tmp_path) -> None:
    url, env = idle_api
    cancelled = requests.post(f"{url}/predict", json=[RECORD] * 5_000, timeout=30).json()["task_id"]
    kept = requests.post(f"{url}/predict", json=[RECORD] * 100, timeout=30).json()["task_id"]
    # Small jobs wait in line for a micro-batch: a cancelled one is skipped there too.
    small_cancelled = requests.post(f"{url}/predict", json=[RECORD] * 3, timeout=30).json()["task_id"]
    small_kept = requests.post(f"{url}/predict", json=[RECORD] * 3, timeout=30).json()["task_id"]
    for task_id in (cancelled, small_cancelled):
        response = requests.delete(f"{url}/tasks/{task_id}", timeout=30)
        assert response.status_code == 200
        assert response.json()["error"]["code"] == "job_cancelled"

    worker: Process = start_worker(env, tmp_path, name="canceller", concurrency=1)
    try:
        queue = redis_server.client(CANCEL_DB)
        celery = make_celery(Settings.from_env(env))
        wait_until(lambda: queue_depth(celery) == 0, 60, "the queue to drain")
        deadline = time.monotonic() + 60
        for task_id in (kept, small_kept):
            while (body := requests.get(f"{url}/tasks/{task_id}", timeout=30).json())["status"] != "succeeded":
                assert time.monotonic() < deadline, body
                time.sleep(0.1)
    finally:
        worker.stop()
    log = worker.log_path.read_text()
    assert f"of job {kept}" in log and f"of job {cancelled}" not in log
    for task_id in (cancelled, small_cancelled):
        final = requests.get(f"{url}/tasks/{task_id}", timeout=30).json()
        assert (final["status"], final["rows_done"]) == ("failed", 0)
        assert {row["error"]["code"] for row in final["results"]} == {"cancelled"}
        assert not queue.exists(keys.attempts(task_id))  # no delivery of it was ever started


def test_ctrl_c_in_the_cli_cancels_its_job(idle_api, redis_server, tmp_path) -> None:
    url, _ = idle_api
    (tmp_path / "records.json").write_text(json.dumps([RECORD] * 100))
    env = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "PREDICT_URL")}
    command = [sys.executable, "-m", "client", "predict", str(tmp_path / "records.json"), "--url", url]
    cli = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    try:
        # Interrupt once the CLI follows its job, i.e. holds the task id: an interrupt before the 202 arrives
        # leaves a client that never learnt which job to cancel. It follows the job's event stream, which
        # the API reads with a blocking XREAD (logged only once the stream ends).
        store = redis_server.client(CANCEL_DB)

        def following() -> bool:
            return any(c["cmd"] == "xread" and c["db"] == str(CANCEL_DB) for c in store.client_list())

        wait_until(following, 30, "the CLI to follow its job")
        cli.send_signal(signal.SIGINT)
        _, stderr = cli.communicate(timeout=30)
    finally:
        cli.kill()
    assert cli.returncode == 130
    assert "cancelled" in stderr
    jobs = redis_server.client(CANCEL_DB)
    (key,) = jobs.keys("glmq:*:job")
    assert jobs.hget(key, "error_code") == b"job_cancelled"


def test_a_job_cancelled_while_running_keeps_its_scored_chunks(idle_api, tmp_path) -> None:
    url, env = idle_api
    rows = 100_000  # 50 chunks of 2,000: far more than one worker scores while the test cancels
    task_id = requests.post(f"{url}/predict", json=[RECORD] * rows, timeout=60).json()["task_id"]
    worker: Process = start_worker(env, tmp_path, name="partial", concurrency=1)
    try:
        wait_until(
            lambda: requests.get(f"{url}/tasks/{task_id}", timeout=30).json()["rows_done"] >= 4_000, 60,
            "two chunks to be scored",
        )  # fmt: skip
        response = requests.delete(f"{url}/tasks/{task_id}", timeout=30)
    finally:
        worker.stop()
    assert response.status_code == 200, response.text
    done = response.json()["rows_done"]
    assert 4_000 <= done < rows
    results = requests.get(f"{url}/tasks/{task_id}", timeout=60).json()["results"]
    assert [row["row"] for row in results] == list(range(rows))
    scored = [row for row in results if "phat" in row]
    assert len(scored) == done == 2_000 * len({row["row"] // 2_000 for row in scored})  # whole chunks
    assert all(row["error"]["code"] == "cancelled" for row in results if "phat" not in row)
    page = requests.get(f"{url}/tasks/{task_id}?offset=1990&limit=20", timeout=30).json()
    assert page["results"] == results[1990:2010]

    # The download of a cancelled job holds the same rows in each format, with an ETag as for any other.
    download = f"{url}/tasks/{task_id}/results"
    assert requests.get(download, headers={"Accept": "application/json"}, timeout=60).json() == results
    ndjson = requests.get(download, headers={"Accept": "application/x-ndjson"}, timeout=60)
    assert [json.loads(line) for line in ndjson.text.splitlines()] == results
    table = requests.get(download, headers={"Accept": "text/csv"}, timeout=60)
    cells = list(csv.DictReader(io.StringIO(table.text, newline="")))
    assert [int(row["row"]) for row in cells] == list(range(rows))
    for row, cell in zip(results, cells, strict=True):
        if "phat" in row:
            assert (float(cell["phat"]), cell["error_message"]) == (row["phat"], "")
        else:
            assert (cell["phat"], cell["error_field"], cell["error_message"]) == ("", "", row["error"]["message"])
    again = requests.get(download, headers={"Accept": "text/csv", "If-None-Match": table.headers["ETag"]}, timeout=30)
    assert (again.status_code, again.content) == (304, b"")
