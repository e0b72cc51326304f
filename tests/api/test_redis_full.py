"""A Redis at maxmemory refuses writes: the API answers 503 and stores nothing of the refused job."""

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from api import create_app
from settings import Secret
from stack.commands import redis_args
from stack.processes import Process, free_port, redis_server_binary, spawn, wait_until

RECORD = {"x12": "$1,000.00", "x31": "asia", "x5": "monday", "x81": "May", "x91": "0.5"}


@pytest.fixture
def small_redis(tmp_path) -> Iterator[int]:
    port = free_port()
    argv = [redis_server_binary(), *redis_args(port, str(tmp_path)), "--maxmemory", "4mb"]
    server: Process = spawn("small-redis", argv, tmp_path / "redis.log")
    client = redis.Redis(port=port, socket_timeout=1)
    try:
        wait_until(lambda: server.alive() and client.ping(), 20, "the small redis")
        yield port
    finally:
        client.close()
        server.stop()


def test_a_full_store_answers_503_and_keeps_no_half_job(settings, small_redis) -> None:
    app = create_app(replace(settings, redis_url=Secret(f"redis://127.0.0.1:{small_redis}/0"), chunk_rows=500))
    client = app.test_client()
    body = json.dumps([RECORD] * 1_000)  # about 100 kB of payload per job
    statuses = []
    for _ in range(100):  # 10 MB at most: well past the 4 MB limit
        response = client.post("/predict", data=body, content_type="application/json")
        statuses.append(response.status_code)
        if response.status_code != 202:
            break
    assert statuses[-1] == 503 and statuses.count(202) == len(statuses) - 1 > 0
    assert response.get_json()["error"]["code"] == "redis_full"
    assert int(response.headers["Retry-After"]) > 0

    store = redis.Redis(port=small_redis)
    jobs = store.keys("glmq:*:job")
    assert len(jobs) == statuses.count(202)  # the refused job left no record
    assert len(store.keys("glmq:*:payload:*")) == 2 * len(jobs)  # and every accepted job has all its chunks
    store.close()
    app.extensions["glmq"].redis.close()
