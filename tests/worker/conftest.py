from collections.abc import Iterator

import pytest
import redis

from settings import Secret, Settings
from worker.celery_app import make_celery
from worker.jobs import JobStore, NewJob


@pytest.fixture
def redis_db(redis_server) -> Iterator[redis.Redis]:
    """Database 2 of the session's server, flushed for each test."""
    client = redis.Redis(port=redis_server.port, db=2)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def jobs(redis_db) -> JobStore:
    return JobStore(redis_db, ttl_seconds=600, deadline_seconds=60)


@pytest.fixture
def celery_app(redis_server):
    return make_celery(Settings(redis_url=Secret(f"redis://127.0.0.1:{redis_server.port}/2")))


@pytest.fixture
def new_job() -> NewJob:
    return NewJob(rows=5, chunk_rows=2, model_name="glm26", model_version=1, threshold=0.712)
