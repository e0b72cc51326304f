from collections.abc import Iterator

import pytest
import redis

JOBS_DB = 5


@pytest.fixture
def redis_db(redis_server) -> Iterator[redis.Redis]:
    yield from redis_server.flushed(JOBS_DB)
