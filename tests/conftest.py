"""Fixtures shared by every test module."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kombu
import pytest
import redis
from sklearn.pipeline import Pipeline

from jobs import JobStore, NewJob
from jobs.broker import QUEUE, WEBHOOK_QUEUE
from model_store import ModelStore, artifacts
from stack.processes import Process, free_port, start_redis
from stack.rabbitmq import RabbitNode, rabbitmq_available, start_rabbitmq
from tests.redis_topology import Cluster
from training.approved import build_approved, load_reference
from training.pipeline import schema

DATA = Path(__file__).parent / "data"
# For `@pytest.mark.parametrize("broker", BROKERS, indirect=True)`: a test run on each Celery broker.
BROKERS = ["redis", "rabbitmq"]


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    return load_reference()


@pytest.fixture(scope="session")
def approved(reference: dict[str, Any]) -> Pipeline:
    return build_approved(reference)


@pytest.fixture(scope="session")
def real_rows() -> dict[str, Any]:
    return json.loads((DATA / "real_rows.json").read_text())


@dataclass
class RedisServer:
    port: int
    data_dir: Path
    log_dir: Path
    process: Process

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db, socket_timeout=5)

    def url_of(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def flushed(self, db: int) -> Iterator[redis.Redis]:
        """Yield a client of database `db`, emptied first: each test module family owns one."""
        client = self.client(db)
        client.flushdb()
        yield client
        client.close()

    def stop(self, kill: bool) -> None:
        """Stop the server: kill -9, or a clean SHUTDOWN that flushes the AOF."""
        if kill:
            self.process.signal_group(signal.SIGKILL)
        else:
            self.client().shutdown()
        self.process.popen.wait(10)

    def start(self) -> None:
        """Start the server again on the same port and data."""
        self.process = start_redis(self.port, self.data_dir, self.log_dir)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server of our own on a free port, stopped at the end of the session."""
    root = tmp_path_factory.mktemp("redis")
    port = free_port()
    server = RedisServer(port, root / "data", root / "logs", start_redis(port, root / "data", root / "logs"))
    yield server
    server.process.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A Redis Cluster of three primaries of our own, stopped at the end of the session (tests.redis_topology)."""
    cluster = Cluster.start(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def rabbitmq_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    """A private rabbitmq-server node on free ports, stopped at the end of the session."""
    missing = rabbitmq_available()
    if missing:
        pytest.skip(f"the RabbitMQ variant needs a private rabbitmq-server node: {missing}")
    node = start_rabbitmq(tmp_path_factory.mktemp("rabbitmq-logs"))
    yield node
    node.stop()


@pytest.fixture
def broker(request: pytest.FixtureRequest) -> str:
    """The Celery broker a test runs on: "redis" unless parametrized (BROKERS, indirect)."""
    return getattr(request, "param", "redis")


@pytest.fixture
def broker_env(broker: str, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment that puts the work queue on the test's broker, emptied first; on Redis, none."""
    if broker == "redis":
        return {}
    node: RabbitNode = request.getfixturevalue("rabbitmq_node")
    with kombu.Connection(node.url) as connection:
        for queue in (QUEUE, WEBHOOK_QUEUE):
            connection.default_channel.queue_delete(queue)
    return {"CELERY_BROKER_URL": node.url}


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def model_store_dir(tmp_path_factory: pytest.TempPathFactory, approved: Pipeline) -> Path:
    """A model store holding the approved GLM as the serving version 1."""
    root = tmp_path_factory.mktemp("model_store")
    store = ModelStore(root)
    fingerprint = {"source": "tests"}
    version = artifacts.save(
        store, "glm26", approved, schema=schema(approved), threshold=0.712, metrics={}, data_fingerprint=fingerprint
    )
    store.promote("glm26", version)
    return root


@pytest.fixture
def jobs(redis_db: redis.Redis) -> JobStore:
    """A job store on the database that the test's directory owns (its `redis_db` fixture)."""
    return JobStore(redis_db, ttl_seconds=600, deadline_seconds=60)


@pytest.fixture
def new_job() -> NewJob:
    return NewJob(rows=5, chunk_rows=2, model_name="glm26", model_version=1, threshold=0.712)
