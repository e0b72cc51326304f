"""CSV in, CSV out: the command line end to end on 100,000 rows of 100 columns, and the API's memory while streaming.

Run: python -m bench.formats [--rows 100000] [--repeat 2]

Starts its own redis-server, a Celery worker with 2 processes and the API under gunicorn, with the
approved model in a temporary store, and a second API process (one gunicorn worker) that only serves
downloads, so that its memory is measured from idle. Prints:
- the command line's time, CSV file in and streamed CSV out, against the same rows sent as JSON
  (the client reads the file and pages the results) and the same CSV read by the client;
- the download API's resident memory (VmRSS) idle, and at its peak while streaming the results of
  the 100,000-row job in each format, sampled every 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import requests

from model_store import ModelStore, artifacts
from stack.processes import free_port, start_api, start_redis, start_worker
from training.approved import build_approved
from training.pipeline import schema
from training.synth import synthesize

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ("text/csv", "application/x-ndjson", "application/json")


def rss_kib(pid: int) -> int:
    """Return a process's resident set size in KiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise ValueError(f"no VmRSS in /proc/{pid}/status")


def children(pid: int) -> list[int]:
    """Return the ids of a process's children."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def peak_while(pid: int, run: object) -> int:
    """Return the highest VmRSS of `pid` (KiB) sampled every 5 ms while `run()` runs."""
    peak = rss_kib(pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_kib(pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run()  # type: ignore[operator]
    finally:
        done.set()
        sampler.join()
    return peak


def cli(*args: str) -> float:
    """Run `python -m client predict ...`; return its wall time."""
    env = {key: value for key, value in os.environ.items() if key not in ("API_KEY", "PREDICT_URL")}
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "client", "predict", *args], cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return elapsed


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = ModelStore(root / "models")
        approved = build_approved()
        version = artifacts.save(
            store, "glm26", approved, schema=schema(approved), threshold=0.712, metrics={}, data_fingerprint={}
        )
        store.promote("glm26", version)
        frame = synthesize(args.rows, seed=13).drop(columns="y")  # the original layout: x0..x99
        source = root / "rows.csv"
        frame.to_csv(source, index=False)
        as_json = root / "rows.json"
        # The same rows as the client reads them: raw strings, null for an empty cell.
        raw = pd.read_csv(source, dtype=str, keep_default_na=False).to_dict("records")
        records = [{name: value or None for name, value in row.items()} for row in raw]
        as_json.write_text(json.dumps(records))
        del records, raw
        redis_port = free_port()
        env = {
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "MODEL_STORE_DIR": str(root / "models"),
            "MAX_BODY_BYTES": str(512 * 1024 * 1024),
        }
        processes = [start_redis(redis_port, root / "redis", root / "logs")]
        try:
            processes.append(start_worker(env, root / "logs", concurrency=2))
            bind = f"127.0.0.1:{free_port()}"
            processes.append(start_api(env, root / "logs", bind))
            url = f"http://{bind}"
            mib = source.stat().st_size / 2**20
            print(f"{args.rows} rows x {len(frame.columns)} columns: CSV {mib:.0f} MiB, "
                  f"JSON {as_json.stat().st_size / 2**20:.0f} MiB")  # fmt: skip
            runs = {
                "CSV file as it is -> streamed CSV": [str(source), "--out", str(root / "a.csv")],
                "same rows as JSON (client reads, pages) -> CSV": [str(as_json), "--out", str(root / "b.csv")],
                "same CSV read by the client, sent as JSON -> CSV": [
                    str(source), "--out", str(root / "c.csv"), "--batch-rows", str(args.rows)
                ],
            }  # fmt: skip
            for name, argv in runs.items():
                best = min(cli(*argv, "--url", url) for _ in range(args.repeat))
                print(f"  {name:<50} {best:6.1f} s")

            # A job to download, then an API process of one gunicorn worker that serves only downloads.
            response = requests.post(
                f"{url}/predict", data=source.read_bytes(), headers={"Content-Type": "text/csv"}, timeout=600
            )
            task_id = response.json()["task_id"]
            while requests.get(f"{url}/tasks/{task_id}?limit=1&wait=5", timeout=60).json()["status"] != "succeeded":
                pass
            # Each format is streamed by a fresh API process of one gunicorn worker, measured from idle.
            print("download API process (one gunicorn worker), VmRSS:")
            for kind in (*FORMATS, "GET /tasks/<id> (one JSON body)"):
                down = f"127.0.0.1:{free_port()}"
                api = start_api({**env, "WEB_CONCURRENCY": "1"}, root / "logs", down)
                try:
                    (worker,) = children(api.popen.pid)
                    requests.get(f"http://{down}/health", timeout=10)
                    time.sleep(0.5)
                    idle = rss_kib(worker)
                    fetched: list[int] = []

                    def fetch(kind: str = kind, down: str = down, fetched: list[int] = fetched) -> None:
                        path = f"/tasks/{task_id}" if kind.startswith("GET") else f"/tasks/{task_id}/results"
                        with requests.get(f"http://{down}{path}", headers={"Accept": kind}, stream=True,
                                          timeout=600) as reply:  # fmt: skip
                            reply.raise_for_status()
                            fetched.append(sum(len(piece) for piece in reply.iter_content(1 << 20)))

                    started = time.perf_counter()
                    peak = peak_while(worker, fetch)
                    took = time.perf_counter() - started
                finally:
                    api.stop()
                print(f"  {kind:<32} idle {idle / 1024:5.1f} MiB, peak {peak / 1024:6.1f} MiB "
                      f"(+{(peak - idle) / 1024:5.1f}), {fetched[0] / 2**20:4.0f} MiB in {took:4.1f} s")  # fmt: skip
        finally:
            for process in reversed(processes):
                process.stop()


if __name__ == "__main__":
    main()
