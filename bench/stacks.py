"""The two services under comparison, each started on free loopback ports with its own folders.

The project: its own redis-server, a Celery worker and the API under gunicorn, with the approved
model bootstrapped into a temporary store. The baseline: `bench.baseline` under gunicorn with
the same number of server processes. Both stop when their `with` block ends, however it ends.

Every process runs in a process group of its own (so that stopping it stops its children) but in
the bench's session. `stack.processes.spawn` starts a session per service instead, and with the
kernel's autogroup scheduling each session gets an equal share of a busy CPU, whatever it runs:
the project's three sessions would then outweigh the baseline's one, and the client's.
"""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from model_store import ModelStore, artifacts
from stack.commands import api_command, redis_args, worker_command
from stack.processes import ROOT, Process, StartupError, free_port, redis_server_binary
from training.approved import build_approved, load_reference
from training.pipeline import schema

MODEL = "glm26"
MIB = 1024 * 1024


def api_processes() -> int:
    """Return how many server processes the project's API runs: its command line, else gunicorn.conf.py, else 2."""
    command = api_command("127.0.0.1:0")
    for flag in ("--workers", "-w"):
        if flag in command:
            return int(command[command.index(flag) + 1])
    config = ROOT / "gunicorn.conf.py"
    if config.exists():
        workers = runpy.run_path(str(config)).get("workers")
        if workers:
            return int(workers)
    return 2


def spawn_here(name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None) -> Process:
    """Start a command in a new process group of this session, with output to a log file."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    beside = Path(sys.executable).parent / argv[0]  # the venv's tools before PATH's
    command = [str(beside) if beside.exists() else argv[0], *argv[1:]]
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    child_env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **(env or {})}
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            command, cwd=ROOT, env=child_env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            process_group=0,
        )  # fmt: skip
    return Process(name, popen, log_path)


def wait_ready(process: Process, ready: Callable[[], bool], timeout: float = 60.0) -> Process:
    """Wait until `ready()` is true; stop the process and raise StartupError if it dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise StartupError(f"{process.name} exited with {process.popen.returncode}:\n{process.log_tail()}")
        try:
            if ready():
                return process
        except Exception:  # not ready yet, whatever the reason
            pass
        time.sleep(0.1)
    process.stop()
    raise StartupError(f"{process.name} not ready after {timeout:.0f} s:\n{process.log_tail()}")


def http_ok(url: str) -> bool:
    """Return whether a GET of `url` answers 200."""
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


@dataclass
class ProjectStack:
    """redis-server, the API and one Celery worker of the project."""

    root: Path
    env: dict[str, str]
    host: str
    port: int
    concurrency: int
    processes: dict[str, Process] = field(default_factory=dict)
    workers_started: int = 0

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def start_redis(self, port: int) -> None:
        """Start redis-server with its data under the stack's folder."""
        data = self.root / "redis"
        data.mkdir(parents=True, exist_ok=True)
        process = spawn_here("redis", [redis_server_binary(), *redis_args(port, str(data))], self.logs / "redis.log")
        client = redis.Redis(port=port, socket_timeout=1)
        self.processes["redis"] = wait_ready(process, lambda: bool(client.ping()), timeout=20)
        client.close()

    def start_worker(self, concurrency: int) -> None:
        """Start a Celery worker with `concurrency` processes."""
        # A log of its own each time: readiness is " ready." in the log, which an old log already holds.
        name = f"worker-{self.workers_started}-c{concurrency}"
        self.workers_started += 1
        argv = [*worker_command(concurrency), "--hostname", f"{name}@%h"]
        process = spawn_here(name, argv, self.logs / f"{name}.log", self.env)
        log = process.log_path
        self.processes["worker"] = wait_ready(process, lambda: " ready." in log.read_text(errors="replace"))
        self.concurrency = concurrency

    def start_api(self) -> None:
        """Start the API under gunicorn, as `make up` does, on the stack's port."""
        process = spawn_here("api", api_command(f"{self.host}:{self.port}"), self.logs / "api.log", self.env)
        self.processes["api"] = wait_ready(process, lambda: http_ok(f"http://{self.host}:{self.port}/health"))

    def restart_worker(self, concurrency: int) -> None:
        """Replace the Celery worker by one with `concurrency` processes."""
        self.processes.pop("worker").stop()
        self.start_worker(concurrency)

    def stop(self) -> None:
        """Stop the API and the worker before Redis."""
        for name in ("api", "worker", "redis"):
            if name in self.processes:
                self.processes.pop(name).stop()


@contextmanager
def project_stack(root: Path, concurrency: int) -> Iterator[ProjectStack]:
    """Start the project with the approved model in a store under `root`; stop it on the way out."""
    reference = load_reference()
    approved = build_approved(reference)
    store = ModelStore(root / "models")
    version = artifacts.save(
        store, MODEL, approved, schema=schema(approved), threshold=reference["threshold"],
        metrics={}, data_fingerprint={"source": "bench.compare"},
    )  # fmt: skip
    store.promote(MODEL, version)
    redis_port = free_port()
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "MODEL_STORE_DIR": str(root / "models"),
        "MODEL_NAME": MODEL,
        "MAX_BODY_BYTES": str(512 * MIB),
        # Whatever the caller's shell holds, the bench measures an open service.
        "API_KEYS": "",
        "RATE_LIMIT_PER_MINUTE": "0",
    }
    stack = ProjectStack(root, env, "127.0.0.1", free_port(), concurrency)
    try:
        stack.start_redis(redis_port)
        stack.start_worker(concurrency)
        stack.start_api()
        yield stack
    finally:
        stack.stop()


@dataclass
class BaselineStack:
    """The synchronous pandas service under gunicorn."""

    host: str
    port: int
    workers: int
    process: Process


@contextmanager
def baseline_stack(root: Path, workers: int) -> Iterator[BaselineStack]:
    """Start the baseline with `workers` server processes; stop it on the way out."""
    from bench.baseline import baseline_command  # Flask and pandas: only where the baseline runs

    root.mkdir(parents=True, exist_ok=True)
    config = root / "gunicorn.conf.py"
    config.write_text("# The baseline's settings are on its command line.\n")
    host, port = "127.0.0.1", free_port()
    process = spawn_here("baseline", baseline_command(f"{host}:{port}", workers, str(config)), root / "baseline.log")
    try:
        wait_ready(process, lambda: http_ok(f"http://{host}:{port}/health"))
        yield BaselineStack(host, port, workers, process)
    finally:
        process.stop()
