"""The whole service with its job store on a Redis Cluster of three primaries and its broker on a separate Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from redis.cluster import RedisCluster

from jobs import keys
from stack.processes import free_port, start_api, start_redis, start_worker
from tests.redis_topology import every_key
from training.scoring import score_records

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster_stack(redis_cluster, model_store_dir: Path, tmp_path: Path) -> Iterator[tuple[str, RedisCluster]]:
    client = redis_cluster.client()
    client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    broker_port = free_port()
    broker = start_redis(broker_port, tmp_path / "broker", tmp_path / "logs")
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{redis_cluster.ports[0]}/0",
        "REDIS_CLUSTER": "1",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{broker_port}/0",
        "MODEL_STORE_DIR": str(model_store_dir),
        "CHUNK_ROWS": "20",
        "WATCHDOG_INTERVAL_SECONDS": "1",
    }
    processes = []
    try:
        processes.append(start_worker(env, tmp_path / "logs", name="cw", concurrency=2))
        bind = f"127.0.0.1:{free_port()}"
        processes.append(start_api(env, tmp_path / "logs", bind))
        yield f"http://{bind}", client
    finally:
        for process in [*reversed(processes), broker]:
            process.stop()
        client.close()


def wait(url: str, task_id: str) -> dict:
    deadline = time.monotonic() + 60
    while (body := requests.get(f"{url}/tasks/{task_id}", timeout=30).json())["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
    return body


def test_big_and_small_jobs_succeed_with_their_keys_spread_over_the_cluster(cluster_stack, approved, real_rows) -> None:
    url, client = cluster_stack
    records = [r["values"] for r in real_rows["rows"]]
    big = [records[i % len(records)] for i in range(200)]  # ten chunks
    jobs = [big, records[:1], records[:3], *([records[:2]] * 5)]
    task_ids = []
    for batch in jobs:
        response = requests.post(f"{url}/predict", json=batch, timeout=30)
        assert response.status_code == 202, response.text
        task_ids.append(response.json()["task_id"])
    for task_id, batch in zip(task_ids, jobs, strict=True):
        body = wait(url, task_id)
        assert body["status"] == "succeeded", body
        expected = score_records(approved, batch, 0.712)
        assert [row["business_outcome"] for row in body["results"]] == [r["business_outcome"] for r in expected]
    # Each job's keys sit on one node, and the jobs together use more than one node.
    nodes = {client.get_node_from_key(keys.job(task_id)).name for task_id in task_ids}
    assert len(nodes) > 1
    for task_id in task_ids:
        found = every_key(client, f"glmq:{{{task_id}}}:*")
        assert found and {client.get_node_from_key(key).name for key in found} == {
            client.get_node_from_key(keys.job(task_id)).name
        }
    assert client.zcard(keys.DEADLINES) == 0  # every ended job left the global deadline index
    metrics = requests.get(f"{url}/metrics", timeout=30).text
    assert "glmq_redis_up 1.0" in metrics


def test_waiting_event_streams_and_downloads_work_on_a_cluster(cluster_stack, real_rows) -> None:
    """The requests that hold a connection of their own (?wait=, the event stream) reach the job's node."""
    url, _ = cluster_stack
    records = [r["values"] for r in real_rows["rows"]]
    batch = [records[i % len(records)] for i in range(100)]  # five chunks
    waited = requests.post(f"{url}/predict?wait=30", json=batch, timeout=60)
    assert waited.status_code == 200 and waited.json()["status"] == "succeeded", waited.text
    task_id = waited.json()["task_id"]
    with requests.get(f"{url}/tasks/{task_id}/events", stream=True, timeout=30) as stream:
        assert stream.status_code == 200
        lines = [line for line in stream.iter_lines(decode_unicode=True) if line.startswith("event:")]
    assert lines.count("event: progress") == 5 and lines[-1] == "event: succeeded"
    download = requests.get(f"{url}/tasks/{task_id}/results", headers={"Accept": "application/x-ndjson"}, timeout=30)
    assert download.status_code == 200 and len(download.text.splitlines()) == 100
