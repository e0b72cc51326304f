"""The capacity model's measurements: what one worker core, one API core and one Redis carry.

Run: python -m bench.capacity [--rows 100000] [--quick]. docs/scaling.md quotes its output.

Starts the project (its own redis-server, a Celery worker and the API under gunicorn; bench.stacks)
on free loopback ports and prints, each with the machine's load average at the time it was taken:
  - rows/s per worker core: rows scored per CPU-second of the worker's processes, and in process;
  - API requests/s per core: POSTs answered per CPU-second of the API's processes, single records
    and batches (no worker runs, so only the API and Redis spend CPU on them);
  - Redis memory per 1M queued rows and per 1M result rows (INFO used_memory, before and after);
  - Redis commands per job (INFO commandstats), for a big job and for small ones;
  - the time of one big job on 1, 2 and 4 worker processes.
CPU-seconds, not wall time, make the per-core figures: the client, the API, the workers and Redis
all share this machine's cores, and so may other programs (the load averages say how busy it was).
"""

from __future__ import annotations

import argparse
import collections
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import redis

from bench.compare import real_records
from bench.load import Http
from bench.stacks import ProjectStack, project_stack
from training.approved import build_approved, load_reference
from training.scoring import score_records

PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    """Return the 1-minute load average and the core count, as `uptime` would show them."""
    return f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"


def cpu_seconds(root: int) -> float:
    """Return the CPU seconds (user + system) spent so far by `root` and its descendants."""
    children: dict[int, list[int]] = {}
    spent: dict[int, float] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        # utime and stime, and cutime and cstime: what its children spent that have ended and been reaped
        # (a pool process replaced after a memory limit, say).
        spent[pid] = sum(int(value) for value in fields[11:15]) / TICKS
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += spent.get(pid, 0.0)
        stack.extend(children.get(pid, []))
    return total


class Measure:
    """The stack under measurement, and how to read its processes and its Redis."""

    def __init__(self, stack: ProjectStack) -> None:
        self.stack = stack
        self.redis = redis.Redis.from_url(stack.env["REDIS_URL"], socket_timeout=30)
        self.http = Http(stack.host, stack.port)

    def post(self, body: bytes) -> str:
        status, reply = self.http.request("POST", "/predict", body)
        if status != 202:
            raise RuntimeError(f"POST /predict answered {status}: {reply[:200]!r}")
        return msgspec.json.decode(reply)["task_id"]

    def wait(self, task_id: str, timeout: float = 900.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            _, reply = self.http.request("GET", f"/tasks/{task_id}?wait=10")
            job = msgspec.json.decode(reply)
            if job["status"] == "succeeded":
                return
            if job["status"] == "failed":
                raise RuntimeError(f"job {task_id} failed: {job['error']}")
        raise RuntimeError(f"job {task_id} not ended after {timeout} s")

    def used_memory(self) -> int:
        return int(self.redis.info("memory")["used_memory"])

    def commands(self) -> collections.Counter[str]:
        stats = self.redis.info("commandstats")
        return collections.Counter({name.removeprefix("cmdstat_"): int(row["calls"]) for name, row in stats.items()})

    def cpu(self, name: str) -> float:
        return cpu_seconds(self.stack.processes[name].pid)


def scaling_curve(measure: Measure, body: bytes, rows: int, processes: list[int]) -> list[str]:
    """Time one big job on each worker size: POST to succeeded, and the workers' CPU-seconds."""
    lines = []
    for concurrency in processes:
        measure.stack.restart_worker(concurrency)
        cpu = measure.cpu("worker")
        start = time.perf_counter()
        measure.wait(measure.post(body))
        seconds = time.perf_counter() - start
        used = measure.cpu("worker") - cpu
        lines.append(
            f"  {concurrency} worker process(es): {seconds:6.2f} s, {rows / seconds:8,.0f} rows/s wall,"
            f" {rows / used:8,.0f} rows per worker CPU-second [{load_average()}]"
        )
    return lines


def api_rate(measure: Measure, body: bytes, seconds: float, clients: int) -> tuple[float, float]:
    """POST `body` from `clients` threads for `seconds`; return requests/s wall and per API CPU-second."""
    done = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        http = Http(measure.stack.host, measure.stack.port)
        while time.monotonic() < stop:
            status, reply = http.request("POST", "/predict", body)
            if status != 202:
                raise RuntimeError(f"POST /predict answered {status}: {reply[:200]!r}")
            done[index] += 1
        http.close()

    cpu = measure.cpu("api")
    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    used = measure.cpu("api") - cpu
    return sum(done) / wall, sum(done) / used


def redis_per_job(measure: Measure, jobs: list[bytes]) -> tuple[collections.Counter[str], float]:
    """Return the Redis commands by name (job store and broker) and the Redis CPU-ms, per job.

    Each job is waited for in turn (GET /tasks/<id>?wait=10), so the counts hold the client's reads,
    and the idle workers' polls of the queue while it waits.
    """
    before, cpu = measure.commands(), measure.cpu("redis")
    for body in jobs:
        measure.wait(measure.post(body))
    calls = measure.commands() - before
    calls.pop("info", None)  # the bench's own
    return calls, (measure.cpu("redis") - cpu) * 1e3 / len(jobs)


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """Return the wall seconds and the CPU seconds of this process that `run` took."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the big job (default 100,000)")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each API load (default 8 s)")
    parser.add_argument("--clients", type=int, default=8, help="client threads of the API loads (default 8)")
    parser.add_argument("--quick", action="store_true", help="a small run that only shows the script works")
    args = parser.parse_args(argv)
    rows, seconds = (5_000, 1.0) if args.quick else (args.rows, args.seconds)

    reference = load_reference()
    approved = build_approved(reference)
    records = real_records(rows)
    chunk = records[:5_000]
    wall, cpu = min(timed(lambda: score_records(approved, chunk, reference["threshold"])) for _ in range(3))
    print(f"bench.capacity: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} cores")
    print("\n## Worker")
    print(
        f"  in process, a 5,000-row chunk: {len(chunk) / wall:,.0f} rows/s wall,"
        f" {len(chunk) / cpu:,.0f} rows per CPU-second [{load_average()}]"
    )

    big = msgspec.json.encode(records)
    single = msgspec.json.encode(records[:1])
    batch = msgspec.json.encode(records[:1_000])
    with tempfile.TemporaryDirectory() as tmp, project_stack(Path(tmp), concurrency=1) as stack:
        measure = Measure(stack)
        measure.wait(measure.post(single))  # model loaded, scripts cached

        print(f"\n## One {rows:,}-row job on 1, 2 and 4 worker processes (CHUNK_ROWS default, 5,000)")
        for line in scaling_curve(measure, big, rows, [1, 2] if args.quick else [1, 2, 4]):
            print(line)

        print("\n## Redis commands per job (job store and broker on one Redis; a job waited for at a time)")
        stack.restart_worker(1)
        for name, jobs in ((f"one {rows:,}-row job", [big]), ("a 1-row job (micro-batched)", [single] * 50)):
            calls, cpu_ms = redis_per_job(measure, jobs)
            total = calls.total() / len(jobs)
            top = ", ".join(f"{command} {count / len(jobs):,.1f}" for command, count in calls.most_common(8))
            print(f"  {name}: {total:,.1f} commands, {cpu_ms:,.1f} ms of Redis CPU [{load_average()}]")
            print(f"    most: {top}")

        # From here on no worker runs: what the API accepts stays queued, as under a backlog.
        stack.processes.pop("worker").stop()
        measure.redis.flushdb()
        print("\n## Redis memory")
        empty = measure.used_memory()
        queued_jobs = [measure.post(big) for _ in range(1 if args.quick else 3)]
        queued = measure.used_memory() - empty
        queued_rows = rows * len(queued_jobs)
        per_million = queued / queued_rows * 1e6 / 2**20
        print(f"  queued: {per_million:,.0f} MiB per 1M rows ({queued_rows:,} rows) [{load_average()}]")
        stack.start_worker(2)
        for task_id in queued_jobs:
            measure.wait(task_id)
        stack.processes.pop("worker").stop()
        kept = measure.used_memory() - empty
        per_million = kept / queued_rows * 1e6 / 2**20
        print(f"  results: {per_million:,.0f} MiB per 1M rows (payloads dropped) [{load_average()}]")
        measure.redis.flushdb()

        print(f"\n## API, no worker running ({args.clients} client threads, {seconds:g} s each)")
        for name, body, per in (("1 record", single, 1), ("1,000-record batch", batch, 1_000)):
            wall, per_cpu = api_rate(measure, body, seconds, args.clients)
            print(
                f"  {name}: {wall:,.0f} requests/s wall, {per_cpu:,.0f} requests ({per_cpu * per:,.0f} rows)"
                f" per API CPU-second [{load_average()}]"
            )
        measure.redis.flushdb()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
