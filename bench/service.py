"""End-to-end time (POST -> results in hand) against in-process scoring of the same rows.

Run: python -m bench.service [--sizes 1,100,10000,100000] [--chunk-rows 5000] [--workers 2]

Starts its own redis-server, one Celery worker with N processes and the API under
gunicorn on free loopback ports, with the approved model in a temporary store.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import requests

from model_store import ModelStore, artifacts
from stack.processes import free_port, start_api, start_redis, start_worker
from training.approved import build_approved
from training.pipeline import schema
from training.scoring import score_records
from training.synth import synthesize


def end_to_end(url: str, body: bytes) -> tuple[float, list[dict[str, Any]]]:
    """Return the seconds from POST to results in hand, and the results."""
    start = time.perf_counter()
    response = requests.post(f"{url}/predict", data=body, headers={"Content-Type": "application/json"}, timeout=600)
    response.raise_for_status()
    status_url = f"{url}{response.headers['Location']}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        reply = requests.get(status_url, timeout=600)
        status = msgspec.json.decode(reply.content)
        if status["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.005)
    else:
        raise RuntimeError(f"job not finished after 600 s: {status_url}")
    elapsed = time.perf_counter() - start
    if status["status"] != "succeeded":
        raise RuntimeError(f"job failed: {status.get('error')}")
    return elapsed, status["results"]


def main() -> None:
    """Print the end-to-end table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1,100,10000,100000")
    parser.add_argument("--chunk-rows", type=int, default=None, help="CHUNK_ROWS (default: the setting's)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    approved = build_approved()
    base = msgspec.json.decode(synthesize(10_000, seed=7).drop(columns="y").to_json(orient="records"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = ModelStore(root / "models")
        version = artifacts.save(
            store, "glm26", approved, schema=schema(approved), threshold=0.712, metrics={}, data_fingerprint={}
        )
        store.promote("glm26", version)
        redis_port = free_port()
        env = {
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "MODEL_STORE_DIR": str(root / "models"),
            "MAX_BODY_BYTES": str(512 * 1024 * 1024),
        }
        if args.chunk_rows:
            env["CHUNK_ROWS"] = str(args.chunk_rows)
        processes = [start_redis(redis_port, root / "redis", root / "logs")]
        try:
            processes.append(start_worker(env, root / "logs", concurrency=args.workers))
            bind = f"127.0.0.1:{free_port()}"
            processes.append(start_api(env, root / "logs", bind))
            url = f"http://{bind}"
            chunk = env.get("CHUNK_ROWS", "default")
            print(f"workers={args.workers} chunk_rows={chunk}")
            print(f"{'rows':>7} {'end-to-end ms':>14} {'in-process ms':>14} {'ratio':>6} {'e2e rows/s':>11}")
            for n in sizes:
                records = (base * (n // len(base) + 1))[:n]
                body = msgspec.json.encode(records)
                e2e, results = min((end_to_end(url, body) for _ in range(args.repeat)), key=lambda r: r[0])
                local = min(_timed(lambda r=records: score_records(approved, r, 0.712)) for _ in range(args.repeat))
                assert len(results) == n
                print(f"{n:>7} {e2e * 1e3:>14.1f} {local * 1e3:>14.1f} {e2e / local:>5.1f}x {n / e2e:>11,.0f}")
        finally:
            for process in reversed(processes):
                process.stop()


def _timed(run: Any) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
