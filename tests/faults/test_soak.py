"""The soak: a steady mix of jobs from 4 clients while workers are killed and Redis once.

Opt-in, never part of `make test`: set GLMQ_SOAK_SECONDS (600 for the reported run) and, for the
RabbitMQ variant, GLMQ_SOAK_BROKER=rabbitmq:

    GLMQ_SOAK_SECONDS=600 .venv/bin/python -m pytest -m soak -s tests/faults/test_soak.py

Production timings (as in test_recovery); every 60 s one worker's whole process group is killed
with SIGKILL and a new one started; Redis is killed once, halfway, and restarted from its AOF.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest
import requests

from training.scoring import score_records
from training.synth import synthesize

pytestmark = [pytest.mark.faults, pytest.mark.soak]

SECONDS = int(os.environ.get("GLMQ_SOAK_SECONDS") or 0)
KILL_EVERY_SECONDS = 60
LARGE_ROWS = 5_000
CLIENTS = 4
SAMPLE = 40


@pytest.fixture
def broker() -> str:
    return os.environ.get("GLMQ_SOAK_BROKER", "redis")


def same_row(got: dict, expected: dict) -> bool:
    """Compare a result row with in-process scoring; phat to 1e-12, as a micro-batch's matrix product may
    round the last bit otherwise than one row's (tests/integration/test_batching.py)."""
    if got.keys() != expected.keys() or ("phat" in got and abs(got["phat"] - expected["phat"]) > 1e-12):
        return False
    return all(got[key] == expected[key] for key in got if key != "phat")


def rss_mib(pids: list[int]) -> float:
    """Return the summed resident memory of some processes, in MiB."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return round(total / 1024, 1)


def memory(stack, worker) -> dict[str, float]:
    return {
        "api": rss_mib([stack.api.pid, *stack.children(stack.api)]),
        "long-lived worker": rss_mib([worker.pid, *stack.children(worker)]),
        "redis": rss_mib([stack.redis.process.pid]),
    }


@pytest.mark.skipif(not SECONDS, reason="the soak runs only with GLMQ_SOAK_SECONDS set (600 for the reported run)")
def test_soak(fault_stack, broker, approved, real_rows, report) -> None:
    fault_stack.use_production_timings()
    fault_stack.env["VISIBILITY_TIMEOUT"] = "150"  # the default: the Redis broker's late redeliveries happen too
    steady = fault_stack.start_worker("steady")
    fault_stack.start_worker("victim")
    fault_stack.start_api()
    singles = [r["values"] for r in real_rows["rows"]]
    large = json.loads(synthesize(LARGE_ROWS, seed=5).drop(columns="y").to_json(orient="records"))
    assert fault_stack.submit(large).status_code == 202  # warm up before the first reading
    time.sleep(5)
    before = memory(fault_stack, steady)

    submitted: list[tuple[str, object]] = []  # (task id, what was sent)
    answers: list[object] = []
    stop = threading.Event()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            body: object = large if rng.random() < 0.1 else rng.choice(singles)
            try:
                response = fault_stack.submit(body, timeout=30)
            except requests.RequestException as exc:
                answers.append(type(exc).__name__)
                time.sleep(1)
                continue
            answers.append(response.status_code)
            if response.status_code == 202:
                submitted.append((response.json()["task_id"], body))
            else:
                time.sleep(1)  # 503 while Redis is down: back off, as the bundled client does
            time.sleep(0.2)

    threads = [threading.Thread(target=client, args=(seed,), daemon=True) for seed in range(CLIENTS)]
    for thread in threads:
        thread.start()
    started = time.monotonic()
    kills, redis_killed = 0, False
    victim = fault_stack.workers[1]
    while (elapsed := time.monotonic() - started) < SECONDS:
        if not redis_killed and elapsed >= SECONDS / 2:
            fault_stack.redis.stop(kill=True)
            time.sleep(2)
            fault_stack.redis.start()
            redis_killed = True
        if elapsed >= (kills + 1) * KILL_EVERY_SECONDS:
            victim.signal_group(signal.SIGKILL)
            victim.popen.wait(10)
            fault_stack.workers.remove(victim)
            victim = fault_stack.start_worker("victim")
            kills += 1
        time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(60)

    task_ids = [task_id for task_id, _ in submitted]
    final = fault_stack.wait_all(task_ids, timeout=300)
    statuses = [final[t]["status"] for t in task_ids]
    sample = random.Random(0).sample(submitted, min(SAMPLE, len(submitted)))
    mismatched = []
    for task_id, body in sample:
        records = body if isinstance(body, list) else [body]
        expected = json.loads(json.dumps(score_records(approved, records, 0.712)))
        got = final[task_id].get("results") or []
        differing = [(a, b) for a, b in zip(got, expected, strict=False) if not same_row(a, b)]
        if differing or len(got) != len(expected):
            mismatched.append((task_id, len(records), len(got), len(differing), differing[:1]))
    time.sleep(5)
    after = memory(fault_stack, steady)
    large_jobs = sum(isinstance(body, list) for _, body in submitted)
    report(
        f"soak, {broker} broker",
        {
            "seconds": SECONDS,
            "jobs accepted": len(task_ids),
            "of 5,000 rows": large_jobs,
            "single records": len(task_ids) - large_jobs,
            "503 answers": answers.count(503),
            "worker kills": kills,
            "redis kills": int(redis_killed),
            "succeeded": statuses.count("succeeded"),
            "failed": statuses.count("failed"),
            "lost": statuses.count("lost"),
            "stuck": statuses.count("stuck"),
            "sample checked": len(sample),
            "sample mismatched": mismatched,
            "RSS MiB before": before,
            "RSS MiB after": after,
            "load average": os.getloadavg(),
        },
    )
    assert statuses.count("lost") == statuses.count("stuck") == 0
    assert statuses.count("succeeded") == len(task_ids)
    assert mismatched == []
