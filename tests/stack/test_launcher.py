"""`make up` runs `python -m stack`: it bootstraps, serves, and stops everything it started."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from stack.processes import ROOT, free_port, wait_until

pytestmark = pytest.mark.integration
LAUNCHER_DB = 3


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    pending = [pid]
    while pending:
        for threads_children in Path(f"/proc/{pending.pop()}/task").glob("*/children"):
            with contextlib.suppress(FileNotFoundError):
                children = {int(child) for child in threads_children.read_text().split()}
                pending.extend(children - found)
                found |= children
    return found


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.fixture
def launched(redis_server, tmp_path) -> Iterator[tuple[subprocess.Popen, str]]:
    redis_server.client(LAUNCHER_DB).flushdb()
    port = free_port()
    log = (tmp_path / "launcher.log").open("w")
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url_of(LAUNCHER_DB),
        "MODEL_STORE_DIR": str(tmp_path / "models"),
        "PORT": str(port),
    }
    # Started from a script, a background job inherits SIGINT as ignored; Ctrl-C must still stop it.
    launcher = subprocess.Popen(
        [sys.executable, "-m", "stack", "--var", str(tmp_path / "var"), "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    yield launcher, f"http://127.0.0.1:{port}"
    if launcher.poll() is None:  # the test failed early: stop it the way that also stops its children
        launcher.terminate()
        try:
            launcher.wait(30)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait(10)
    log.close()


def test_up_bootstraps_serves_and_stops_everything_on_ctrl_c(launched, tmp_path) -> None:
    launcher, url = launched

    def healthy() -> bool:
        assert launcher.poll() is None, (tmp_path / "launcher.log").read_text()
        try:
            return requests.get(f"{url}/health", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_until(healthy, 90, "the launcher's API")
    assert (tmp_path / "models" / "glm26" / "current").read_text().strip() == "1"
    task = requests.post(f"{url}/predict", json={"x12": "($5,032.58)", "x5": "monday"}, timeout=10).json()
    deadline = time.monotonic() + 30
    while (body := requests.get(f"{url}/tasks/{task['task_id']}", timeout=10).json())["status"] != "succeeded":
        assert time.monotonic() < deadline and body["status"] in ("queued", "running"), body
        time.sleep(0.2)
    assert body["results"][0]["row"] == 0 and 0 < body["results"][0]["phat"] < 1

    started = descendants(launcher.pid)
    assert len(started) >= 4  # a worker with its pool process, gunicorn with its workers
    launcher.send_signal(signal.SIGINT)
    assert launcher.wait(60) == 0
    assert "stack stopping" in (tmp_path / "launcher.log").read_text()
    assert [pid for pid in started if alive(pid)] == []
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/health", timeout=2)
