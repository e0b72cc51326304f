"""The service end to end with its work queue on RabbitMQ, and job state on Redis."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest
import requests

from jobs.broker import QUEUE, WEBHOOK_QUEUE
from stack.processes import free_port, start_api, start_worker
from tests.integration.conftest import Stack
from training.scoring import score_records

pytestmark = pytest.mark.integration
RABBIT_DB = 14


@pytest.fixture(scope="module")
def rabbit_stack(redis_server, stack_env, rabbitmq_node, tmp_path_factory) -> Iterator[Stack]:
    redis_server.client(RABBIT_DB).flushdb()
    env = {**stack_env, "REDIS_URL": redis_server.url_of(RABBIT_DB), "CELERY_BROKER_URL": rabbitmq_node.url}
    log_dir = tmp_path_factory.mktemp("rabbit-logs")
    worker = start_worker(env, log_dir, name="rabbit", concurrency=2)
    bind = f"127.0.0.1:{free_port()}"
    try:
        api = start_api(env, log_dir, bind)
    except BaseException:
        worker.stop()
        raise
    yield Stack(f"http://{bind}", env, log_dir, [worker], api)
    api.stop()
    worker.stop()


def test_ten_thousand_rows_equal_in_process_scoring_on_rabbitmq(rabbit_stack, approved, real_rows) -> None:
    records = [r["values"] for r in real_rows["rows"]]
    batch = [records[i % len(records)] for i in range(10_000)]
    body = rabbit_stack.score(batch)
    assert body["status"] == "succeeded"
    assert body["results"] == json.loads(json.dumps(score_records(approved, batch, 0.712)))
    # Five chunks went through RabbitMQ, not Redis.
    assert rabbit_stack.workers[0].log_path.read_text().count(f"of job {body['task_id']}") == 5


def test_the_queue_is_a_quorum_queue_and_the_workers_are_seen(rabbit_stack, rabbitmq_node) -> None:
    listed = subprocess.run(
        ["rabbitmqctl", "-n", rabbitmq_node.name, "-q", "list_queues", "name", "type"],
        env=rabbitmq_node.env, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    queues = sorted(line.split() for line in listed.splitlines() if line.startswith((QUEUE, WEBHOOK_QUEUE)))
    assert queues == [[QUEUE, "quorum"], [WEBHOOK_QUEUE, "quorum"]]
    ready = requests.get(f"{rabbit_stack.url}/ready", timeout=10).json()
    assert (ready["status"], ready["workers"]) == ("ready", 2)
    metrics = requests.get(f"{rabbit_stack.url}/metrics", timeout=10).text
    assert "glmq_workers_alive 2.0" in metrics
