"""One typed settings object, read from the environment with casts and defaults."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")


class Secret:
    """A string that never shows itself in repr, str or logs."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the wrapped value."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('**********')" if self._value else "Secret('')"

    __str__ = __repr__


def mask_url(url: str) -> str:
    """Return the URL with any password replaced by asterisks."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":*****@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _split_keys(raw: str) -> tuple[Secret, ...]:
    return tuple(Secret(key.strip()) for key in raw.split(",") if key.strip())


def _split_names(raw: str) -> tuple[str, ...]:
    return tuple(name.strip().lower() for name in raw.split(",") if name.strip())


def _webhook_secret(raw: str) -> Secret:
    """Return a Standard Webhooks secret: `whsec_` and the base64 of at least 16 bytes."""
    try:
        key = base64.b64decode(raw.removeprefix("whsec_"), validate=True)
    except binascii.Error:
        key = b""
    if not raw.startswith("whsec_") or len(key) < 16:
        raise ValueError("not whsec_ followed by the base64 of at least 16 bytes")
    return Secret(raw)


def _flag(raw: str) -> bool:
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


@dataclass(frozen=True)
class Settings:
    """Everything the API, the worker and training read from the environment."""

    redis_url: Secret = field(default_factory=lambda: Secret("redis://127.0.0.1:6379/0"))
    # The broker, when it is not the job store's Redis: a redis:// URL. Required with REDIS_CLUSTER,
    # since kombu cannot use a cluster; empty means REDIS_URL (or the Sentinel primary below).
    celery_broker_url: Secret = field(default_factory=lambda: Secret(""))
    # 1: REDIS_URL names one node of a Redis Cluster, which holds the job store (jobs.connection).
    redis_cluster: int = 0
    # host:port,... of Redis Sentinels: the job store and the broker then use the primary they name
    # REDIS_SENTINEL_MASTER, with REDIS_URL's password and database (its host and port are not used).
    redis_sentinels: str = ""
    redis_sentinel_master: str = "glmq"
    redis_sentinel_password: Secret = field(default_factory=lambda: Secret(""))
    # Replicas that must hold a new job before the API accepts it (Redis WAIT, up to 1 s; 0: no wait).
    # Replication is asynchronous: with Sentinel, set 1, or a failover may lose accepted jobs.
    redis_wait_replicas: int = 0
    model_store_dir: Path = Path("var/model_store")
    model_name: str = "glm26"
    port: int = 1313
    max_batch_rows: int = 100_000
    max_body_bytes: int = 256 * 1024 * 1024
    # A longer value of a model field is not stored: its row gets an error in its place (api/values.py).
    max_field_chars: int = 256
    chunk_rows: int = 5_000
    # Jobs of at most small_job_rows rows are micro-batched: a worker scores many of them, from any
    # client, in one pipeline call of at most batch_max_rows rows. 0 turns micro-batching off.
    small_job_rows: int = 64
    batch_max_rows: int = 512
    result_ttl_seconds: int = 24 * 3600
    job_deadline_seconds: int = 600
    task_soft_time_limit: int = 60
    task_time_limit: int = 90
    visibility_timeout: int = 150
    max_chunk_retries: int = 3
    watchdog_interval_seconds: int = 10
    # A worker process renews the lease of the work it runs every lease_seconds / 5; work whose lease
    # lapsed (its process died) is re-driven by the watchdog within a second (jobs.leases).
    lease_seconds: int = 5
    stall_seconds: int = 30
    # Requests of one API process that may wait (?wait=) at once, each holding a Redis connection of
    # its own for up to 30 s (api/waiting.py); past it, a request answers at once.
    max_waiters: int = 100
    # Event streams (GET /tasks/<id>/events) one API process serves at once, each holding a Redis
    # connection of its own (api/events.py); past it, 503 with Retry-After.
    max_streams: int = 100
    api_keys: tuple[Secret, ...] = ()
    rate_limit_per_minute: int = 0
    # The OTLP/HTTP base URL spans go to (http://collector:4318); empty: tracing is off (tracing.py).
    otel_exporter_otlp_endpoint: str = ""
    # Webhooks (jobs/webhooks.py): the Standard Webhooks signing secret, `whsec_` and base64; empty: a
    # Webhook-Url is refused. Attempts back off from the base, doubling with jitter: 13 span about a day.
    webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    webhook_max_attempts: int = 13
    webhook_retry_base_seconds: float = 20.0
    # Loopback, private and link-local targets (and plain http) are refused unless this is on.
    webhook_allow_private: bool = False
    # When set, the only host names a Webhook-Url may name; ".example.com" admits its subdomains.
    webhook_allowed_hosts: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from an environment mapping (os.environ by default)."""
        env = os.environ if environ is None else environ
        casts: dict[str, Callable[[str], object]] = {
            "redis_url": Secret,
            "celery_broker_url": Secret,
            "redis_sentinel_password": Secret,
            "model_store_dir": Path,
            "api_keys": _split_keys,
            "webhook_secret": _webhook_secret,
            "webhook_allowed_hosts": _split_names,
        }
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw is None or raw == "":
                continue
            cast = casts.get(f.name, {"int": int, "float": float, "bool": _flag}.get(str(f.type), str))
            try:
                values[f.name] = cast(raw)
            except ValueError as exc:
                if f.type == "Secret":  # never echoed, not even when wrong
                    raise ValueError(f"{f.name.upper()} is not a valid secret: {exc}") from None
                raise ValueError(f"{f.name.upper()}={raw!r} is not a valid {f.type}") from exc
        return cls(**values)  # type: ignore[arg-type]

    def describe(self) -> dict[str, object]:
        """Return the settings as plain values, with secrets masked."""
        shown: dict[str, object] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("redis_url", "celery_broker_url"):
                value = mask_url(value.reveal())
            elif f.name == "api_keys":
                value = f"{len(value)} key(s)"
            elif isinstance(value, Secret):
                value = str(value)
            shown[f.name] = str(value) if isinstance(value, Path) else value
        return shown
