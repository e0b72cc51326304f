from collections.abc import Iterator

import pytest
import redis

from settings import Secret, Settings
from worker.celery_app import make_celery
from worker.jobs import JobStore, NewJob

WORKER_DB = 2


@pytest.fixture
def redis_db(redis_server) -> Iterator[redis.Redis]:
    yield from redis_server.flushed(WORKER_DB)


@pytest.fixture
def jobs(redis_db) -> JobStore:
    return JobStore(redis_db, ttl_seconds=600, deadline_seconds=60)


@pytest.fixture
def celery_app(redis_server):
    return make_celery(Settings(redis_url=Secret(redis_server.url_of(WORKER_DB))))


@pytest.fixture
def new_job() -> NewJob:
    return NewJob(rows=5, chunk_rows=2, model_name="glm26", model_version=1, threshold=0.712)
