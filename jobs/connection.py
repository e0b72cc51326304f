"""How the service reaches Redis: one server, the primary that Redis Sentinel names, or a Redis Cluster.

The job store may live on any of the three. The broker (kombu) may live on one server or behind
Sentinel, never on a cluster: with REDIS_CLUSTER, CELERY_BROKER_URL names a separate Redis.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote, urlsplit

import redis
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from settings import Settings


def sentinel_addresses(settings: Settings) -> list[tuple[str, int]]:
    """Return REDIS_SENTINELS as (host, port) pairs; raise ValueError on a malformed entry."""
    addresses = []
    for item in settings.redis_sentinels.split(","):
        if not item.strip():
            continue
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_SENTINELS entry {item.strip()!r} is not host:port")
        addresses.append((host.strip("[]"), int(port)))
    return addresses


def connect(settings: Settings, **options: Any) -> redis.Redis | RedisCluster:
    """Return a client of the job store's Redis; `options` are redis-py connection options."""
    url = settings.redis_url.reveal()
    if settings.redis_sentinels:
        password, db = _password_and_db(url)
        sentinel = Sentinel(
            sentinel_addresses(settings),
            sentinel_kwargs=_sentinel_auth(settings) | {"socket_timeout": 2, "socket_connect_timeout": 2},
        )
        return sentinel.master_for(settings.redis_sentinel_master, password=password, db=db, **options)
    if settings.redis_cluster:
        options.pop("db", None)
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


def broker_url(settings: Settings) -> str:
    """Return the broker's URL: CELERY_BROKER_URL, else the Sentinel group, else REDIS_URL."""
    if settings.celery_broker_url:
        return settings.celery_broker_url.reveal()
    if settings.redis_cluster:
        raise ValueError("REDIS_CLUSTER needs CELERY_BROKER_URL: kombu cannot use a Redis Cluster as its broker")
    if settings.redis_sentinels:
        password, db = _password_and_db(settings.redis_url.reveal())
        auth = f":{quote(password, safe='')}@" if password else ""
        hosts = [(f"[{host}]" if ":" in host else host, port) for host, port in sentinel_addresses(settings)]
        return ";".join(f"sentinel://{auth}{host}:{port}/{db}" for host, port in hosts)
    return settings.redis_url.reveal()


def broker_options(settings: Settings) -> dict[str, Any]:
    """Return the transport options the broker needs beyond its URL: the Sentinel group's name and auth."""
    if not settings.redis_sentinels or settings.celery_broker_url:
        return {}
    return {"master_name": settings.redis_sentinel_master, "sentinel_kwargs": _sentinel_auth(settings)}


def broker_transport(settings: Settings) -> str:
    """Return kombu's transport class for the broker (jobs.transport)."""
    sentinel = settings.redis_sentinels and not settings.celery_broker_url
    return "jobs.transport:SentinelTransport" if sentinel else "jobs.transport:Transport"


def _password_and_db(url: str) -> tuple[str | None, int]:
    parts = urlsplit(url)
    return (None if parts.password is None else unquote(parts.password)), int(parts.path.strip("/") or 0)


def _sentinel_auth(settings: Settings) -> dict[str, Any]:
    password = settings.redis_sentinel_password.reveal()
    return {"password": password} if password else {}
