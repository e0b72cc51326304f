"""Clients that send jobs and wait for their results, alone or from many threads at once.

Plain http.client on a keep-alive connection per client thread: light enough that the client,
which shares the machine's cores with both services, costs each side the same little.
"""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

Results = list[dict[str, Any]]
TERMINAL = ("succeeded", "failed")
# A GET that answered this fast did not wait on the server: pause briefly before the next one.
FAST_ANSWER_SECONDS = 0.05
POLL_PAUSE_SECONDS = 0.005


class BenchError(RuntimeError):
    """A service answered something other than results."""


class Http:
    """One keep-alive HTTP/1.1 connection, reopened when the server has closed it."""

    def __init__(self, host: str, port: int, timeout: float = 600.0) -> None:
        self._connection = http.client.HTTPConnection(host, port, timeout=timeout)

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """Send one request and return the status and the body."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in range(2):
            try:
                self._connection.request(method, path, body=body, headers=headers)
                response = self._connection.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: one more try on a fresh one.
                self._connection.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection."""
        self._connection.close()


class Side(Protocol):
    """A service under test: scores one request body and returns its result rows."""

    name: str

    def connect(self) -> Http: ...

    def score(self, connection: Http, body: bytes) -> Results: ...


@dataclass
class ProjectSide:
    """The project: POST /predict?wait=, then GET /tasks/<id>?wait= until the job has ended."""

    host: str
    port: int
    wait_seconds: float = 10.0
    job_deadline_seconds: float = 600.0
    max_requests_per_job: int = 100_000
    name: str = "project"
    requests: int = 0
    jobs: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def connect(self) -> Http:
        """Open a connection to the API."""
        return Http(self.host, self.port)

    def score(self, connection: Http, body: bytes) -> Results:
        """Submit one job and return its results once it has succeeded."""
        wait = f"wait={self.wait_seconds:g}"
        status, reply = connection.request("POST", f"/predict?{wait}", body)
        sent = 1
        if status == 202:
            task_id = msgspec.json.decode(reply)["task_id"]
            deadline = time.monotonic() + self.job_deadline_seconds
            while True:
                if sent > self.max_requests_per_job or time.monotonic() > deadline:
                    raise BenchError(f"job {task_id} not ended after {sent} requests")
                asked = time.perf_counter()
                status, reply = connection.request("GET", f"/tasks/{task_id}?{wait}")
                sent += 1
                if status != 200:
                    raise BenchError(f"GET /tasks/{task_id} answered {status}: {reply[:300]!r}")
                job = msgspec.json.decode(reply)
                if job["status"] in TERMINAL:
                    break
                # A server that ignores `wait` answers at once: without a pause this would spin.
                if time.perf_counter() - asked < FAST_ANSWER_SECONDS:
                    time.sleep(POLL_PAUSE_SECONDS)
        elif status == 200:
            job = msgspec.json.decode(reply)
        else:
            raise BenchError(f"POST /predict answered {status}: {reply[:300]!r}")
        with self._lock:
            self.requests += sent
            self.jobs += 1
        if job["status"] != "succeeded":
            raise BenchError(f"job {job['task_id']} failed: {job.get('error')}")
        results: Results = job["results"]
        return results

    def requests_per_job(self) -> float:
        """Return the mean number of HTTP requests a job took so far, and start counting afresh."""
        with self._lock:
            mean = self.requests / self.jobs if self.jobs else 0.0
            self.requests = self.jobs = 0
        return mean


@dataclass
class BaselineSide:
    """The synchronous baseline: one POST answers the results."""

    host: str
    port: int
    name: str = "baseline"

    def connect(self) -> Http:
        """Open a connection to the baseline."""
        return Http(self.host, self.port)

    def score(self, connection: Http, body: bytes) -> Results:
        """Send one request and return its results."""
        status, reply = connection.request("POST", "/predict", body)
        if status != 200:
            raise BenchError(f"baseline POST /predict answered {status}: {reply[:300]!r}")
        results: Results = msgspec.json.decode(reply)["results"]
        return results


@dataclass(frozen=True)
class Load:
    """What one load run measured: each job's seconds (in completion order per client) and the wall time."""

    latencies: list[float]
    seconds: float

    @property
    def jobs(self) -> int:
        return len(self.latencies)


def run_load(
    side: Side,
    body_of: Callable[[int], bytes],
    jobs: int,
    clients: int,
    check: Callable[[int, Results], None],
) -> Load:
    """Send `jobs` jobs from `clients` threads, each sending its next job when the last one has answered.

    `body_of(k)` gives job k's body; `check(k, results)` runs after job k's time is taken.
    """
    counter = itertools.count()
    stop = threading.Event()

    def client() -> list[float]:
        connection = side.connect()
        seconds: list[float] = []
        try:
            while not stop.is_set() and (k := next(counter)) < jobs:
                body = body_of(k)
                start = time.perf_counter()
                results = side.score(connection, body)
                seconds.append(time.perf_counter() - start)
                check(k, results)
        except BaseException:
            stop.set()
            raise
        finally:
            connection.close()
        return seconds

    pool = ThreadPoolExecutor(clients, thread_name_prefix=f"{side.name}-client")
    start = time.perf_counter()
    futures = [pool.submit(client) for _ in range(clients)]
    try:
        latencies = [t for future in futures for t in future.result()]
    except BaseException:
        # Ctrl-C or a failed job: the other clients stop after their current request.
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    elapsed = time.perf_counter() - start
    pool.shutdown()
    return Load(latencies, elapsed)
