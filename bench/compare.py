"""This project against the synchronous pandas service it replaces, side by side in one run.

Run: python -m bench.compare [--quick] [--scenarios single,concurrent,...] [--worker-concurrency 2]

Starts both services on free loopback ports, each in temporary folders of its own: the project
(its own redis-server, a Celery worker, the API under gunicorn, the approved model in a temporary
store) and the baseline (`bench.baseline`, gunicorn with as many processes as the project's API).
Both are stopped at the end, on Ctrl-C and on error. Records are the real rows of
tests/data/real_rows.json, cycled, each with the next real x12 value of the training CSV.

Every answered row is checked against in-process `score_records` of the same record (phat to
1e-12, and business_outcome); the exit status is 1 if any disagrees. The machine is shared:
compare the two sides within one run, and read the load averages printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import msgspec
import numpy as np

from api.batches import decode_records, decoders_for
from bench.agreement import Agreement
from bench.load import BaselineSide, BenchError, Load, ProjectSide, Results, Side, run_load
from bench.memory import ProcessMemory, tree_memory
from bench.stacks import MODEL, BaselineStack, ProjectStack, api_processes, baseline_stack, project_stack
from model_store import ModelStore, artifacts
from settings import Settings
from stack.processes import ROOT, StartupError
from training.scoring import score_records

REAL_ROWS = ROOT / "tests" / "data" / "real_rows.json"
BASE_RECORDS = 10_000
DASH = "\N{EN DASH}"
SCENARIOS = ("single", "concurrent", "batch", "sustained", "concurrency", "floor", "memory")


@dataclass(frozen=True)
class Plan:
    """How much each scenario sends."""

    single_requests: int = 200
    single_warmup: int = 20
    concurrent_records: int = 2_000
    concurrent_clients: int = 16
    batch_rows: int = 10_000
    batch_repeat: int = 5
    big_rows: int = 100_000
    big_repeat: int = 2
    sustained_jobs: int = 20
    sustained_rows: int = 10_000
    sustained_clients: int = 4
    concurrency_rows: int = 100_000
    concurrency_repeat: int = 2
    floor_repeat: int = 5


FULL = Plan()
QUICK = replace(
    FULL, single_requests=30, single_warmup=5, concurrent_records=160, batch_rows=2_000, batch_repeat=3,
    big_rows=10_000, big_repeat=1, sustained_jobs=8, sustained_rows=1_000, concurrency_rows=10_000,
    concurrency_repeat=1, floor_repeat=3,
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    """One line of the final table: a figure of each side, and which way is better."""

    scenario: str
    metric: str
    project: float | None
    baseline: float | None = None
    better: str = ""

    @property
    def ratio(self) -> float | None:
        if self.project is None or not self.baseline:
            return None
        return self.project / self.baseline


@dataclass
class Bench:
    """What the scenarios share: the plan, both sides, the records and the figures so far."""

    plan: Plan
    project: ProjectSide
    baseline: BaselineSide
    stack: ProjectStack
    baseline_stack: BaselineStack
    records: list[dict[str, Any]]
    agreement: Agreement
    pipeline: Any
    threshold: float
    input_fields: list[str]
    default_concurrency: int
    rows: list[Row] = field(default_factory=list)
    batch_ms: dict[str, float] = field(default_factory=dict)
    memory_at_start: dict[str, list[ProcessMemory]] = field(default_factory=dict)
    _singles: list[bytes] = field(default_factory=list)
    _batches: dict[int, bytes] = field(default_factory=dict)

    @property
    def sides(self) -> tuple[Side, Side]:
        return (self.project, self.baseline)

    def __post_init__(self) -> None:
        # Encoded up front: client threads only pick their next body.
        self._singles = [msgspec.json.encode(record) for record in self.records]

    def single(self, k: int) -> bytes:
        """Return record k as a request body of one JSON object."""
        return self._singles[k % len(self._singles)]

    def batch(self, rows: int) -> bytes:
        """Return a request body of `rows` records, the base records cycled."""
        if rows not in self._batches:
            repeats = -(-rows // len(self.records))
            self._batches[rows] = msgspec.json.encode((self.records * repeats)[:rows])
        return self._batches[rows]

    def check_single(self, side: Side) -> Callable[[int, Results], None]:
        """Return a check of single-record job k's answer."""
        return lambda k, results: self.agreement.check(side.name, k, results)

    def check_batch(self, side: Side) -> Callable[[int, Results], None]:
        """Return a check of a batch's answer: its rows start at record 0."""
        return lambda _, results: self.agreement.check(side.name, 0, results)

    def timed_batches(self, side: Side, rows: int, repeat: int, clients: int = 1) -> Load:
        """Send `repeat` jobs of `rows` records from `clients` clients."""
        body = self.batch(rows)
        return run_load(side, lambda _: body, repeat, clients, self.check_batch(side))


def real_records(n: int) -> list[dict[str, Any]]:
    """Return n records: the real rows cycled, each with the next real x12 value of the training CSV."""
    data = json.loads(REAL_ROWS.read_text())
    rows = [row["values"] for row in data["rows"]]
    money = data["x12_first_values_of_train_csv"]
    return [{**rows[i % len(rows)], "x12": money[i % len(money)]} for i in range(n)]


def ms(seconds: float) -> float:
    """Return seconds as milliseconds."""
    return seconds * 1e3


def percentile(load: Load, q: float) -> float:
    """Return the q-th percentile latency of a load run, in milliseconds."""
    return ms(float(np.percentile(load.latencies, q)))


def run_single(bench: Bench) -> None:
    """One client sends single records one after another, with nothing else running."""
    plan = bench.plan
    label = f"1 record, one client, {plan.single_requests} in a row"
    loads: dict[str, Load] = {}
    for side in bench.sides:
        run_load(side, bench.single, plan.single_warmup, 1, bench.check_single(side))
        loads[side.name] = load = run_load(side, bench.single, plan.single_requests, 1, bench.check_single(side))
        print(f"  {side.name:<9} p50 {percentile(load, 50):7.2f} ms   p95 {percentile(load, 95):7.2f} ms")
    for q in (50, 95):
        figures = [percentile(loads[side.name], q) for side in bench.sides]
        bench.rows.append(Row(label, f"p{q} ms", *figures, "lower"))


def run_concurrent(bench: Bench) -> None:
    """Many clients send single records at once, each its next as soon as the last has answered."""
    plan = bench.plan
    n, clients = plan.concurrent_records, plan.concurrent_clients
    label = f"{n:,} single records, {clients} concurrent clients"
    loads: dict[str, Load] = {}
    for side in bench.sides:
        run_load(side, bench.single, 2 * clients, clients, bench.check_single(side))
        bench.project.requests_per_job()
        loads[side.name] = load = run_load(side, bench.single, n, clients, bench.check_single(side))
        extra = f"   {bench.project.requests_per_job():.2f} HTTP requests per job" if side is bench.project else ""
        print(
            f"  {side.name:<9} {n / load.seconds:8,.0f} records/s   p50 {percentile(load, 50):7.1f} ms   "
            f"p95 {percentile(load, 95):7.1f} ms   p99 {percentile(load, 99):7.1f} ms{extra}"
        )
    project, baseline = loads["project"], loads["baseline"]
    bench.rows.append(Row(label, "records/s", n / project.seconds, n / baseline.seconds, "higher"))
    for q in (50, 95, 99):
        bench.rows.append(Row(label, f"p{q} ms", percentile(project, q), percentile(baseline, q), "lower"))


def run_batch(bench: Bench) -> None:
    """One client sends a batch and waits for all of its results: the median of several, then a big one."""
    plan = bench.plan
    for rows, repeat in ((plan.batch_rows, plan.batch_repeat), (plan.big_rows, plan.big_repeat)):
        label = f"{rows:,}-row batch, POST to all results, median of {repeat}"
        figures: dict[str, float] = {}
        for side in bench.sides:
            bench.timed_batches(side, rows, 1)  # warm-up: connections, allocator, caches
            load = bench.timed_batches(side, rows, repeat)
            figures[side.name] = ms(statistics.median(load.latencies))
            rate = rows / figures[side.name] * 1e3
            print(f"  {side.name:<9} {rows:>7,} rows  {figures[side.name]:9.1f} ms  {rate:9,.0f} rows/s")
        if rows == plan.batch_rows:
            bench.batch_ms = figures
        bench.rows.append(Row(label, "ms", figures["project"], figures["baseline"], "lower"))


def run_sustained(bench: Bench) -> None:
    """Several clients send batches back to back: sustained rows per second."""
    plan = bench.plan
    jobs, rows, clients = plan.sustained_jobs, plan.sustained_rows, plan.sustained_clients
    label = f"{jobs} x {rows:,} rows, {clients} concurrent clients"
    rates: dict[str, float] = {}
    for side in bench.sides:
        bench.timed_batches(side, rows, 1)
        load = bench.timed_batches(side, rows, jobs, clients)
        rates[side.name] = jobs * rows / load.seconds
        print(f"  {side.name:<9} {rates[side.name]:9,.0f} rows/s   ({load.seconds:.1f} s)")
    bench.rows.append(Row(label, "rows/s", rates["project"], rates["baseline"], "higher"))


def run_concurrency(bench: Bench) -> None:
    """The project only: one big batch with the worker restarted at concurrency 1 and 2."""
    plan = bench.plan
    rows, default = plan.concurrency_rows, bench.default_concurrency
    levels = [level for level in (1, 2) if level != default] + [default]  # the default last: it stays up
    figures: dict[int, float] = {}
    for level in levels:
        if bench.stack.concurrency != level:
            bench.stack.restart_worker(level)
        bench.timed_batches(bench.project, plan.batch_rows, 1)
        load = bench.timed_batches(bench.project, rows, plan.concurrency_repeat)
        figures[level] = ms(statistics.median(load.latencies))
        print(f"  project   worker concurrency {level}: {rows:,} rows in {figures[level]:9.1f} ms")
        label = f"{rows:,} rows, worker concurrency {level}, median of {plan.concurrency_repeat}"
        bench.rows.append(Row(label, "ms", figures[level]))
    bench.rows.append(Row(f"{rows:,} rows, concurrency 2 over 1", "speed-up x", figures[1] / figures[2]))


def run_floor(bench: Bench) -> None:
    """The project's own scoring in this process, no HTTP: decode, score_records, encode."""
    plan = bench.plan
    rows = plan.batch_rows
    body = bench.batch(rows)
    lean = decoders_for(tuple(bench.input_fields))
    decoders: dict[str, Callable[[bytes], Any]] = {
        "the model's fields decoded, as the API does": lambda raw: msgspec.to_builtins(decode_records(raw, lean)),
        "whole records decoded": msgspec.json.decode,
    }
    floors: dict[str, float] = {}
    for how, decode in decoders.items():
        seconds = []
        for _ in range(plan.floor_repeat + 1):  # the first is a warm-up
            start = time.perf_counter()
            msgspec.json.encode(score_records(bench.pipeline, decode(body), bench.threshold))
            seconds.append(time.perf_counter() - start)
        floors[how] = floor = ms(statistics.median(seconds[1:]))
        print(f"  in-process {rows:,} rows, {how}: {floor:.1f} ms (median of {plan.floor_repeat})")
        bench.rows.append(Row(f"in-process floor, {rows:,} rows, {how}", "ms", floor))
    floor = min(floors.values())
    if bench.batch_ms:
        project, baseline = bench.batch_ms["project"] / floor, bench.batch_ms["baseline"] / floor
        bench.rows.append(Row(f"{rows:,}-row batch over the lower floor", "x floor", project, baseline, "lower"))


def memory_snapshot(bench: Bench) -> dict[str, list[ProcessMemory]]:
    """Return the PSS of every process of both services, by part."""
    return {
        "project api": tree_memory(bench.stack.processes["api"].pid),
        "project worker": tree_memory(bench.stack.processes["worker"].pid),
        "project redis": tree_memory(bench.stack.processes["redis"].pid),
        "baseline": tree_memory(bench.baseline_stack.process.pid),
    }


def memory_rows(trees: dict[str, list[ProcessMemory]], when: str) -> list[Row]:
    """Return the table's rows for one memory snapshot."""

    def children_mean(tree: list[ProcessMemory]) -> float:
        return statistics.mean(p.pss_mib for p in tree if p.depth > 0)

    def total(*parts: str) -> float:
        return sum(p.pss_mib for part in parts for p in trees[part])

    api, baseline = trees["project api"], trees["baseline"]
    processes = sum(p.depth > 0 for p in api)
    scenario = f"PSS memory, {when}"
    return [
        Row(scenario, f"MiB per API server process (mean of {processes})", children_mean(api),
            children_mean(baseline), "lower"),
        Row(scenario, "MiB, Celery worker, all its processes", total("project worker")),
        Row(scenario, "MiB, redis-server, holding this run's jobs", total("project redis")),
        Row(scenario, "MiB, all processes of the service", total("project api", "project worker", "project redis"),
            total("baseline"), "lower"),
    ]  # fmt: skip


def run_memory(bench: Bench) -> None:
    """PSS of every process of both services, idle at start and after whatever ran before."""
    trees = memory_snapshot(bench)
    for part, tree in trees.items():
        for proc in tree:
            role = "main" if proc.depth == 0 else "child"
            print(f"  {part:<15} {role:<6} pid {proc.pid:>7}  {proc.name:<16} {proc.pss_mib:8.1f} MiB")
    if bench.memory_at_start:
        bench.rows += memory_rows(bench.memory_at_start, "at start, idle")
    bench.rows += memory_rows(trees, "after the run")


RUNNERS: dict[str, Callable[[Bench], None]] = {
    "single": run_single,
    "concurrent": run_concurrent,
    "batch": run_batch,
    "sustained": run_sustained,
    "concurrency": run_concurrency,
    "floor": run_floor,
    "memory": run_memory,
}


def number(value: float | None) -> str:
    """Format a figure with as many digits as it deserves."""
    if value is None:
        return DASH
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def table(rows: list[Row]) -> list[str]:
    """Return the figures as a Markdown table."""
    lines = [
        "| scenario | metric | project | baseline | project/baseline | better |",
        "|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        ratio = DASH if row.ratio is None else f"{row.ratio:.2f}"
        cells = [row.scenario, row.metric, number(row.project), number(row.baseline), ratio, row.better or DASH]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, for a smoke run")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of {','.join(SCENARIOS)}")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="Celery worker processes (default 2)")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds the project client asks the API to wait")
    args = parser.parse_args(argv)
    chosen = {name.strip() for name in args.scenarios.split(",") if name.strip()}
    if unknown := chosen - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    args.chosen = [name for name in SCENARIOS if name in chosen]
    return args


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Start both services, run the chosen scenarios, stop both and print the table."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    plan = QUICK if args.quick else FULL
    started, load_start = datetime.now().astimezone(), os.getloadavg()
    records = real_records(BASE_RECORDS)
    servers = api_processes()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp, ExitStack() as services:
            root = Path(tmp)
            print(f"starting the project and the baseline in {root} ...", flush=True)
            stack = services.enter_context(project_stack(root / "project", args.worker_concurrency))
            base = services.enter_context(baseline_stack(root / "baseline", servers))
            loaded = artifacts.load(ModelStore(stack.root / "models"), MODEL)
            reference = score_records(loaded.pipeline, records, loaded.threshold)
            agreement = Agreement(
                np.array([row["phat"] for row in reference]), np.array([row["business_outcome"] for row in reference])
            )
            bench = Bench(
                plan, ProjectSide(stack.host, stack.port, wait_seconds=args.wait), BaselineSide(base.host, base.port),
                stack, base, records, agreement, loaded.pipeline, loaded.threshold, loaded.manifest["input_fields"],
                args.worker_concurrency,
            )  # fmt: skip
            settings = Settings.from_env({**os.environ, **stack.env})
            if "memory" in args.chosen:
                bench.memory_at_start = memory_snapshot(bench)
            for name in args.chosen:
                print(f"== {name}: {RUNNERS[name].__doc__}", flush=True)
                RUNNERS[name](bench)
    except KeyboardInterrupt:
        print("interrupted; both services stopped", file=sys.stderr)
        return 130
    except (StartupError, BenchError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    load_end = os.getloadavg()

    print()
    print(f"bench.compare, {started:%Y-%m-%d %H:%M %Z}, {platform.node()}, {os.cpu_count()} CPUs, "
          f"{'quick' if args.quick else 'full'} run")  # fmt: skip
    print(
        f"project: API gunicorn x {servers} processes, Celery worker concurrency {args.worker_concurrency}, "
        f"CHUNK_ROWS {settings.chunk_rows}, small jobs <= {getattr(settings, 'small_job_rows', '?')} rows, "
        f"client wait={args.wait:g} s; baseline: gunicorn x {servers} sync workers, pandas per request"
    )
    print(f"machine load (1/5/15 min): start {_loads(load_start)}, end {_loads(load_end)}")
    print()
    print("\n".join(table(bench.rows)))
    print()
    print("\n".join(agreement.report()))
    return 0 if agreement.ok() else 1


def _loads(values: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.2f}" for value in values)


if __name__ == "__main__":
    sys.exit(main())
