"""The two services under comparison, each started on free loopback ports with its own folders.

The project: its own redis-server, a Celery worker and the API under gunicorn, with the approved
model bootstrapped into a temporary store. The baseline: `bench.baseline` under gunicorn with
the same number of server processes. Both stop when their `with` block ends, however it ends.
"""

from __future__ import annotations

import runpy
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from model_store import ModelStore, artifacts
from stack.commands import api_command
from stack.processes import ROOT, Process, StartupError, free_port, spawn, start_api, start_redis, start_worker
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


@dataclass
class ProjectStack:
    """redis-server, the API and one Celery worker of the project."""

    root: Path
    env: dict[str, str]
    host: str
    port: int
    concurrency: int
    processes: dict[str, Process] = field(default_factory=dict)
    restarts: int = 0

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def restart_worker(self, concurrency: int) -> None:
        """Replace the Celery worker by one with `concurrency` processes."""
        self.processes.pop("worker").stop()
        self.restarts += 1
        # A name of its own: start_worker waits for " ready." in the log, which an old log already holds.
        name = f"worker-{self.restarts}-c{concurrency}"
        self.processes["worker"] = start_worker(self.env, self.logs, name=name, concurrency=concurrency)
        self.concurrency = concurrency

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
        stack.processes["redis"] = start_redis(redis_port, root / "redis", stack.logs)
        stack.processes["worker"] = start_worker(env, stack.logs, name="worker-0", concurrency=concurrency)
        stack.processes["api"] = start_api(env, stack.logs, f"{stack.host}:{stack.port}")
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
    process = spawn("baseline", baseline_command(f"{host}:{port}", workers, str(config)), root / "baseline.log")
    try:
        _wait_healthy(process, f"http://{host}:{port}/health", timeout=60)
        yield BaselineStack(host, port, workers, process)
    finally:
        process.stop()


def _wait_healthy(process: Process, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise StartupError(f"{process.name} exited with {process.popen.returncode}:\n{process.log_tail()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:  # not listening yet
            pass
        time.sleep(0.1)
    raise StartupError(f"{process.name} not ready after {timeout:.0f} s:\n{process.log_tail()}")
