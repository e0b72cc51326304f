"""Which Redis the settings name: one server, a Sentinel group or a Cluster, and the broker that goes with it."""

import pytest
from redis.cluster import RedisCluster
from redis.sentinel import SentinelConnectionPool

from jobs.connection import broker_options, broker_transport, broker_url, connect, sentinel_addresses
from settings import Settings

SENTINELS = {"REDIS_SENTINELS": "10.0.0.1:26379, sentinel-b:26380,[::1]:26381", "REDIS_SENTINEL_MASTER": "main"}


def test_one_redis_is_the_store_and_the_broker() -> None:
    settings = Settings.from_env({"REDIS_URL": "redis://:pw@db:6379/3"})
    assert broker_url(settings) == "redis://:pw@db:6379/3"
    assert (broker_options(settings), broker_transport(settings)) == ({}, "jobs.transport:Transport")


def test_sentinels_name_the_primary_of_the_store_and_the_broker_with_the_url_password_and_database() -> None:
    settings = Settings.from_env(
        {"REDIS_URL": "redis://:p%40ss@ignored:1/4", "REDIS_SENTINEL_PASSWORD": "s3cret", **SENTINELS}
    )
    assert sentinel_addresses(settings) == [("10.0.0.1", 26379), ("sentinel-b", 26380), ("::1", 26381)]
    assert broker_url(settings) == ";".join(
        f"sentinel://:p%40ss@{host}/4" for host in ("10.0.0.1:26379", "sentinel-b:26380", "[::1]:26381")
    )
    assert broker_options(settings) == {"master_name": "main", "sentinel_kwargs": {"password": "s3cret"}}
    assert broker_transport(settings) == "jobs.transport:SentinelTransport"
    client = connect(settings, socket_timeout=1)  # lazy: no sentinel is asked until a command runs
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "main"
    assert (pool.connection_kwargs["password"], pool.connection_kwargs["db"]) == ("p@ss", 4)
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.describe())


@pytest.mark.parametrize("entry", ["sentinel-a", "sentinel-a:", ":26379", "host:port"])
def test_a_malformed_sentinel_entry_is_refused(entry) -> None:
    with pytest.raises(ValueError, match="not host:port"):
        sentinel_addresses(Settings.from_env({"REDIS_SENTINELS": entry}))


def test_a_cluster_store_needs_a_broker_of_its_own(redis_cluster) -> None:
    url = f"redis://127.0.0.1:{redis_cluster.ports[0]}/0"
    with pytest.raises(ValueError, match="CELERY_BROKER_URL"):
        broker_url(Settings.from_env({"REDIS_URL": url, "REDIS_CLUSTER": "1"}))
    settings = Settings.from_env(
        {"REDIS_URL": url, "REDIS_CLUSTER": "1", "CELERY_BROKER_URL": "redis://:pw@broker:6379/0"}
    )
    assert broker_url(settings) == "redis://:pw@broker:6379/0"
    assert settings.describe()["celery_broker_url"] == "redis://:*****@broker:6379/0"
    client = connect(settings, socket_timeout=5)
    assert isinstance(client, RedisCluster) and len(client.get_primaries()) == 3
    client.close()
