"""Messages no worker can run are dead-lettered and counted; the worker stays up and jobs go on."""

import base64
import json
import time
import uuid
from typing import Any

import pytest
import requests

from jobs import keys
from jobs.broker import QUEUE, SCORE_CHUNK

pytestmark = pytest.mark.faults


def envelope(body: Any, task: str = SCORE_CHUNK, encoded: bool = True) -> str:
    """Return a kombu Redis envelope as Celery would send it, around `body` (JSON, base64'd unless not `encoded`)."""
    task_id = uuid.uuid4().hex
    raw = body if not encoded else base64.b64encode(json.dumps(body).encode()).decode()
    return json.dumps({
        "body": raw, "content-encoding": "utf-8", "content-type": "application/json",
        "headers": {"lang": "py", "task": task, "id": task_id, "root_id": task_id, "retries": 0},
        "properties": {"correlation_id": task_id, "delivery_mode": 2, "priority": 0, "body_encoding": "base64",
                       "delivery_tag": uuid.uuid4().hex,
                       "delivery_info": {"exchange": "", "routing_key": QUEUE}},
    })  # fmt: skip


def chunk(*args: Any) -> str:
    return envelope([list(args), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}])


def test_poison_messages_are_dead_lettered_and_the_worker_goes_on(fault_stack, real_rows, report) -> None:
    fault_stack.start_api()
    records = [r["values"] for r in real_rows["rows"]] * 200  # 1,200 rows: 3 chunks of 500
    victim = fault_stack.submit(records).json()["task_id"]
    other = uuid.uuid4().hex
    poison = {
        "not JSON": "{not json",
        "JSON, not an envelope": "true",
        "body not base64": envelope("!!!not base64***", encoded=False),
        "body not JSON": envelope(base64.b64encode(b"{not json").decode(), encoded=False),
        "body not [args, kwargs, embed]": envelope("x"),
        "unknown task": envelope([[victim, 0], {}, {}], task="worker.tasks.nope"),
        "wrong arity": chunk(victim),
        "three arguments": chunk(victim, 0, 1),
        "true as chunk": chunk(victim, True),
        "0.0 as chunk": chunk(victim, 0.0),
        "-1 as chunk": chunk(victim, -1),
        "chunk 99 of 3": chunk(victim, 99),
        "chunk 3 of 3": chunk(victim, 3),
        "a job id that is no id": chunk(victim + "}:x", 0),
        "a job that does not exist": chunk(other, 0),
    }
    client = fault_stack.redis.client()
    # Ahead of the job's own chunks (the worker takes from the right), so each must pass a worker first.
    client.rpush(QUEUE, *poison.values())
    worker = fault_stack.start_worker("w1", concurrency=1)
    deadline = time.monotonic() + 60
    while client.llen(QUEUE) and time.monotonic() < deadline:
        time.sleep(0.2)
    victim_final = fault_stack.wait_all([victim], timeout=60)[victim]
    good = fault_stack.submit(real_rows["rows"][0]["values"]).json()["task_id"]
    good_final = fault_stack.wait_all([good], timeout=60)[good]
    letters = [json.loads(entry) for entry in client.lrange(keys.DEADLETTER, 0, -1)]
    counts = {kind.decode(): int(n) for kind, n in client.hgetall(keys.STATS_POISON).items()}
    metrics = requests.get(f"{fault_stack.url}/metrics", timeout=10).text
    figures = {"pushed": len(poison), "dead-lettered": len(letters), "by kind": counts, "worker alive": worker.alive()}
    figures |= {"victim": victim_final["status"], "next job": good_final["status"]}
    report("poison messages", figures | {"dead-letter TTL s": client.ttl(keys.DEADLETTER)})
    assert worker.alive()
    assert victim_final["status"] == "succeeded"
    assert [r["row"] for r in victim_final["results"]] == list(range(1_200))
    assert good_final["status"] == "succeeded"
    # Every message but the one for an unknown job is dead-lettered; that one is skipped like a finished job's.
    assert len(letters) == len(poison) - 1
    assert sum(counts.values()) == len(poison) - 1
    assert client.ttl(keys.DEADLETTER) > 0
    assert any(letter["raw"] == "{not json" for letter in letters)
    assert 'glmq_messages_dead_lettered_total{kind="undecodable"} 4.0' in metrics
    assert client.hlen(keys.UNACKED) == 0
    log = worker.log_path.read_text()
    assert "Unrecoverable error" not in log
    assert "payload of chunk" not in log
