from collections.abc import Iterator

import pytest
import redis

from jobs.broker import make_celery
from settings import Secret, Settings

WORKER_DB = 2


@pytest.fixture
def redis_db(redis_server) -> Iterator[redis.Redis]:
    yield from redis_server.flushed(WORKER_DB)


@pytest.fixture
def celery_app(redis_server):
    return make_celery(Settings(redis_url=Secret(redis_server.url_of(WORKER_DB))))
