"""Optional API keys and per-key rate limiting: the guard of the prediction blueprint.

With API_KEYS set, POST /predict and GET /tasks/<id> need `Authorization: Bearer <key>`.
Each job is bound to the key that created it (by a hash of the key, never the key
itself), so another key cannot see it. RATE_LIMIT_PER_MINUTE, when above zero,
limits submissions (POST /predict) per key, or per client address without keys,
in a fixed one-minute window counted in Redis, so every API process shares the
count. Polling is not counted: it is a cheap read, and clients poll often. The probes, the
description and the metrics live on other blueprints, which this guard does not run for. `own_job`
answers 404 for a job of another caller exactly as for one that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from flask import g, request

from api.errors import ApiError
from api.services import services
from jobs import Job, keys

_TASK_ID = re.compile(r"[0-9a-f]{32}")


def owner_of(key: str) -> str:
    """Return the stable, non-reversible id under which a key's jobs are stored."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def authenticate() -> str:
    """Return the caller's owner id ('' when keys are off); refuse a missing or unknown key."""
    keys = services().settings.api_keys
    if not keys:
        return ""
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    presented = presented.strip()
    known = any(hmac.compare_digest(presented.encode(), key.reveal().encode()) for key in keys)
    if scheme.lower() != "bearer" or not presented or not known:
        raise ApiError(
            401, "unauthorized", "Send a valid API key as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": 'Bearer realm="predictions"'},
        )  # fmt: skip
    return owner_of(presented)


def caller(owner: str) -> str:
    """Return who a request counts as: its key's owner, or its client address when keys are off."""
    return owner or f"addr:{request.remote_addr}"


def enforce_rate_limit(owner: str) -> None:
    """Count this request in the caller's one-minute window; refuse it past the limit."""
    svc = services()
    limit = svc.settings.rate_limit_per_minute
    if limit <= 0:
        return
    now = time.time()
    window = int(now // 60)
    key = keys.rate(caller(owner), window)
    pipe = svc.redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, 61)
    count, _ = pipe.execute()
    if count > limit:
        retry_after = max(1, int((window + 1) * 60 - now) + 1)
        raise ApiError(
            429, "rate_limited", f"More than {limit} requests this minute; retry after {retry_after} s.",
            {"limit_per_minute": limit}, headers={"Retry-After": str(retry_after)},
        )  # fmt: skip


def guard() -> None:
    """Authenticate the caller into `g.owner` and count a submission against its rate (a `before_request`)."""
    g.owner = authenticate()
    if request.method == "POST":
        enforce_rate_limit(g.owner)


def own_job(task_id: str) -> Job:
    """Return the caller's job; 404 for a malformed id, an unknown or expired job, or another caller's."""
    job = services().jobs.get(task_id) if _TASK_ID.fullmatch(task_id) else None
    if job is None or job.owner != g.owner:
        raise ApiError(404, "task_not_found", "No such task; it may have expired.", {"task_id": task_id})
    return job
