"""A real stack for the session: our redis-server, two Celery workers and the API under gunicorn."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from stack.processes import Process, free_port, start_api, start_worker

MAX_BODY_BYTES = 40_000_000


@dataclass
class Stack:
    url: str
    env: dict[str, str]
    log_dir: Path
    workers: list[Process]
    api: Process

    def submit(self, records: Any, query: str = "", **kwargs: Any) -> requests.Response:
        return requests.post(f"{self.url}/predict{query}", json=records, timeout=60, **kwargs)

    def wait(self, task_id: str, timeout: float = 120, url: str = "", **kwargs: Any) -> dict[str, Any]:
        """Poll a task (on this stack's API, or the one at `url`) until it finishes; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = requests.get(f"{url or self.url}/tasks/{task_id}", timeout=30, **kwargs).json()
            if body["status"] in ("succeeded", "failed"):
                return body
            time.sleep(0.05)
        raise AssertionError(f"task {task_id} still {body['status']} after {timeout} s")

    def score(self, records: Any, query: str = "") -> dict[str, Any]:
        response = self.submit(records, query)
        assert response.status_code == 202, response.text
        return self.wait(response.json()["task_id"])


@pytest.fixture(scope="session")
def stack_env(redis_server, model_store_dir) -> dict[str, str]:
    return {
        "REDIS_URL": redis_server.url,
        "MODEL_STORE_DIR": str(model_store_dir),
        "MODEL_NAME": "glm26",
        "CHUNK_ROWS": "2000",
        "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "WATCHDOG_INTERVAL_SECONDS": "1",
        "STALL_SECONDS": "5",
    }


@pytest.fixture(scope="session")
def stack(stack_env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_dir = tmp_path_factory.mktemp("logs")
    processes: list[Process] = []
    try:
        for name in ("w1", "w2"):
            processes.append(start_worker(stack_env, log_dir, name=name, concurrency=1))
        bind = f"127.0.0.1:{free_port()}"
        processes.append(start_api(stack_env, log_dir, bind))
        yield Stack(f"http://{bind}", stack_env, log_dir, processes[:2], processes[2])
    finally:
        for process in reversed(processes):
            process.stop()


@pytest.fixture
def idle_api(redis_server, stack_env, tmp_path, idle_db: int, broker_env) -> Iterator[tuple[str, dict[str, str]]]:
    """An API on its own database (the module's `idle_db`) and no worker, so jobs wait until a test starts one.

    The work queue is on the test's broker (`broker`, Redis unless parametrized).
    """
    redis_server.client(idle_db).flushdb()
    env = {**stack_env, "REDIS_URL": redis_server.url_of(idle_db), **broker_env}
    bind = f"127.0.0.1:{free_port()}"
    api = start_api(env, tmp_path, bind)
    yield f"http://{bind}", env
    api.stop()
