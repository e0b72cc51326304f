"""`make up` runs `python -m stack`: it bootstraps, serves, and stops everything it started."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from stack.processes import ROOT, free_port, wait_until
from tests.signals import default_sigint

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


def start_launcher(tmp_path: Path, env: dict[str, str], log_name: str = "launcher.log") -> subprocess.Popen:
    log = (tmp_path / log_name).open("w")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "stack", "--var", str(tmp_path / "var"), "--workers", "1"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=default_sigint,
    )
    log.close()
    return launcher


def test_up_refuses_at_once_when_its_port_is_taken(redis_server, tmp_path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        launcher = start_launcher(
            tmp_path,
            {"REDIS_URL": redis_server.url_of(LAUNCHER_DB), "MODEL_STORE_DIR": str(tmp_path / "m"), "PORT": str(port)},
        )
        assert launcher.wait(60) == 1
    out = (tmp_path / "launcher.log").read_text()
    assert f"not starting: port {port} for PORT (the API) is taken" in out and "make down" in out
    assert not (tmp_path / "var" / "logs").exists()  # nothing was started


def test_ctrl_c_during_start_up_stops_what_was_started(tmp_path) -> None:
    # The worker's Redis never answers, so it never becomes ready; the ready line an earlier run left
    # in the appended worker log must not count, and Ctrl-C must end the wait.
    logs = tmp_path / "var" / "logs"
    logs.mkdir(parents=True)
    (logs / "worker.log").write_text("[old run] celery@host ready.\n")
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    env = {"REDIS_URL": dead_redis, "MODEL_STORE_DIR": str(tmp_path / "m"), "PORT": str(free_port())}
    launcher = start_launcher(tmp_path, env)
    pids = tmp_path / "var" / "stack.pids"
    wait_until(lambda: "worker " in pids.read_text() and len(descendants(launcher.pid)) >= 2, 120, "the worker")
    started = descendants(launcher.pid)
    launcher.send_signal(signal.SIGINT)
    assert launcher.wait(60) == 0
    out = (tmp_path / "launcher.log").read_text()
    assert "stack stopping" in out and "ready:" not in out and "api log" not in out
    assert [pid for pid in started if alive(pid)] == []


def test_down_stops_the_stack_of_a_killed_launcher(launched, tmp_path) -> None:
    launcher, url = launched
    wait_until(lambda: requests.get(f"{url}/health", timeout=2).status_code == 200, 120, "the launcher's API")
    started = descendants(launcher.pid)
    launcher.kill()
    launcher.wait(10)
    assert requests.get(f"{url}/health", timeout=2).status_code == 200  # the orphans still serve
    down = subprocess.run(
        [sys.executable, "-m", "stack", "down", "--var", str(tmp_path / "var")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert "stopped worker" in down.stderr and "api" in down.stderr  # the launcher itself is gone
    assert [pid for pid in started if alive(pid)] == []
    assert not (tmp_path / "var" / "stack.pids").exists()
    again = subprocess.run(
        [sys.executable, "-m", "stack", "down", "--var", str(tmp_path / "var")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0 and "no stack recorded" in again.stderr
