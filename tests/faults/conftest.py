"""Each fault test gets its own redis-server, workers and API, all on loopback."""

from __future__ import annotations

import collections
import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from jobs import keys
from stack.processes import Process, free_port, start_api, start_redis, start_worker
from tests.conftest import RedisServer

TERMINAL = ("succeeded", "failed")
# Fault tests shorten these; recovery is measured with their defaults (60 s, 90 s, 30 s, 10 s), so that
# anything that waited on them would show as minutes.
PRODUCTION_TIMINGS = ("TASK_SOFT_TIME_LIMIT", "TASK_TIME_LIMIT", "STALL_SECONDS", "WATCHDOG_INTERVAL_SECONDS")


def ended_at(body: dict[str, Any]) -> float:
    """Return when a finished job ended, as epoch seconds."""
    return datetime.fromisoformat(body["finished_at"]).timestamp()


def complete(body: dict[str, Any], rows: int) -> bool:
    """Say whether a job succeeded with every row, in order, exactly once."""
    return body["status"] == "succeeded" and [r["row"] for r in body.get("results", [])] == list(range(rows))


@dataclass
class FaultStack:
    """Processes under test, and helpers to load them and read what happened."""

    root: Path
    env: dict[str, str]
    redis: RedisServer
    url: str = ""
    api: Process | None = None
    workers: list[Process] = field(default_factory=list)

    def use_production_timings(self) -> None:
        """Run with the default time limits, stall timer and sweep interval (set before starting processes)."""
        for name in PRODUCTION_TIMINGS:
            self.env.pop(name)

    def deliver_unacked_now(self) -> int:
        """Put what workers hold unacknowledged back on the queue, as kombu does after the visibility timeout.

        kombu does it later (the timeout, then a scan every 100 s at most); return how many were put back.
        """
        client = self.redis.client()
        held = client.hgetall(keys.UNACKED)
        for tag, record in held.items():
            message, _, routing_key = json.loads(record)
            client.lpush(routing_key, json.dumps(message))
            client.hdel(keys.UNACKED, tag)
            client.zrem("unacked_index", tag)
        return len(held)

    def start_worker(
        self, name: str, concurrency: int = 2, app: str = "worker", env: dict[str, str] | None = None
    ) -> Process:
        env = {**self.env, **(env or {})}
        process = start_worker(env, self.root / "logs", name=name, concurrency=concurrency, app=app)
        self.workers.append(process)
        return process

    def start_api(self) -> None:
        bind = f"127.0.0.1:{free_port()}"
        self.api = start_api(self.env, self.root / "logs", bind)
        self.url = f"http://{bind}"

    def submit(self, records: Any, timeout: float = 30) -> requests.Response:
        return requests.post(f"{self.url}/predict", json=records, timeout=timeout)

    def submit_many(self, batches: list[Any], threads: int = 4) -> list[requests.Response]:
        with ThreadPoolExecutor(threads) as pool:
            return list(pool.map(self.submit, batches))

    def status(self, task_id: str) -> requests.Response:
        return requests.get(f"{self.url}/tasks/{task_id}", timeout=30)

    def wait_all(self, task_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        """Poll until every task is finished or gone; return the last body (or a 404 marker) of each."""
        deadline = time.monotonic() + timeout
        final: dict[str, dict[str, Any]] = {}
        while time.monotonic() < deadline and len(final) < len(task_ids):
            for task_id in task_ids:
                if task_id in final:
                    continue
                try:
                    response = self.status(task_id)
                except requests.ConnectionError:
                    continue
                if response.status_code == 404:
                    final[task_id] = {"status": "lost"}
                elif response.status_code == 200 and response.json()["status"] in TERMINAL:
                    final[task_id] = response.json()
            time.sleep(0.2)
        for task_id in task_ids:
            final.setdefault(task_id, {"status": "stuck"})
        return final

    def chunk_runs(self) -> collections.Counter[tuple[str, int]]:
        """Count completed runs of each (job, chunk) across every worker log."""
        runs: collections.Counter[tuple[str, int]] = collections.Counter()
        pattern = re.compile(r"scored chunk (\d+) of job ([0-9a-f]{32})")
        batched = re.compile(r"scored a micro-batch of \d+ jobs, \d+ rows: ([0-9a-f ]+)")  # each job is chunk 0
        for log in (self.root / "logs").glob("*.log"):
            text = log.read_text(errors="replace")
            for chunk, job in pattern.findall(text):
                runs[(job, int(chunk))] += 1
            for ids in batched.findall(text):
                runs.update((job, 0) for job in ids.split())
        return runs

    def all_logs(self) -> str:
        """Return every process's log, one after another."""
        return "\n".join(log.read_text(errors="replace") for log in sorted((self.root / "logs").glob("*.log")))

    def logged(self, text: str) -> int:
        """Count the occurrences of `text` in every log."""
        return self.all_logs().count(text)

    def redelivered_chunks(self, task_ids: list[str]) -> int:
        """Count chunks that were started more than once (Redis keeps a delivery count per chunk)."""
        client = self.redis.client()
        return sum(1 for task_id in task_ids for count in client.hvals(keys.attempts(task_id)) if int(count) > 1)

    def children(self, process: Process) -> list[int]:
        """Return the pool processes of a Celery worker."""
        pids = []
        for listing in Path(f"/proc/{process.pid}/task").glob("*/children"):
            for pid in listing.read_text().split():
                status = Path(f"/proc/{pid}/status")
                if status.exists() and "\nState:\tZ" not in status.read_text():
                    pids.append(int(pid))
        return sorted(pids)


# Short timers, so that the fault tests see the recovery paths within seconds.
FAULT_TIMINGS = {
    "CHUNK_ROWS": "500",
    "WATCHDOG_INTERVAL_SECONDS": "1",
    "STALL_SECONDS": "2",
    "VISIBILITY_TIMEOUT": "20",
    "TASK_SOFT_TIME_LIMIT": "3",
    "TASK_TIME_LIMIT": "5",
    "MAX_CHUNK_RETRIES": "2",
    "JOB_DEADLINE_SECONDS": "240",
}


def submit_until_stopped(stack, batches, accepted: list[str], answers: list[object], stop) -> None:
    """Submit each batch in turn until `stop` is set, noting every answer and each accepted task id.

    Meant for a thread beside a fault: a transport error or a 503 is an answer, anything else but a 202 fails.
    """
    for batch in batches:
        if stop.is_set():
            return
        try:
            response = stack.submit(batch, timeout=10)
        except requests.RequestException as exc:
            answers.append(type(exc).__name__)
            continue
        answers.append(response.status_code)
        if response.status_code == 202:
            accepted.append(response.json()["task_id"])
        elif response.status_code != 503:
            raise AssertionError(f"unexpected {response.status_code}: {response.text[:200]}")
        time.sleep(0.02)


@pytest.fixture
def fault_stack(tmp_path: Path, model_store_dir: Path, broker_env: dict[str, str]) -> Iterator[FaultStack]:
    port = free_port()
    redis = RedisServer(
        port, tmp_path / "redis", tmp_path / "logs", start_redis(port, tmp_path / "redis", tmp_path / "logs")
    )
    env = {"REDIS_URL": redis.url, "MODEL_STORE_DIR": str(model_store_dir), **FAULT_TIMINGS, **broker_env}
    stack = FaultStack(tmp_path, env, redis)
    try:
        yield stack
    finally:
        for process in [*stack.workers, *([stack.api] if stack.api else [])]:
            process.stop()
        redis.process.stop()


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]):
    """Print a test's figures to the terminal, past pytest's capture."""

    def show(title: str, figures: dict[str, Any]) -> None:
        with capsys.disabled():
            print(f"\n[{title}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))

    return show
