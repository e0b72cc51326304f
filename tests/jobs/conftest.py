"""The job-store tests run twice: on one Redis, and on a Redis Cluster of three primaries."""

from collections.abc import Iterator

import pytest
import redis
from redis.cluster import RedisCluster

JOBS_DB = 5


@pytest.fixture(params=["redis", "cluster"])
def redis_db(request: pytest.FixtureRequest, redis_server) -> Iterator[redis.Redis | RedisCluster]:
    if request.param == "redis":
        yield from redis_server.flushed(JOBS_DB)
        return
    client = request.getfixturevalue("redis_cluster").client()  # a cluster has database 0 only
    client.flushdb(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.close()
