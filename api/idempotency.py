"""`Idempotency-Key` on POST /predict (IETF httpapi Idempotency-Key draft): a repeat answers with the first job.

A key names one logical submission of one caller (the API key's owner, or the client address when
keys are off). The first request with a key claims it in Redis (SET NX) before it creates its job,
then writes the job's id beside the claim. A repeat with the same fingerprint (the body's SHA-256 and
the query parameters that shape the job) answers with that job; one with another fingerprint is
`422 idempotency_key_reused`. A repeat that arrives while the first is still creating its job waits
for it, up to WAIT_SECONDS, so concurrent duplicates make exactly one job. A claim lives as long as
a job's keys do (RESULT_TTL_SECONDS).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis

from api.errors import ApiError
from jobs import keys

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_CHARS = 255
# The query parameters that only change how the answer comes (how long it waits), not what job a body
# makes; every other parameter the view takes (model, threshold, fields, ...) is part of the fingerprint.
ANSWER_ONLY = frozenset({"wait"})
# How long a repeat waits for the first request with its key to record the job it made.
WAIT_SECONDS = 5.0
# A claim lives this long until its job is recorded: a process that died in between frees the key soon.
PENDING_SECONDS = 60
_POLL_SECONDS = 0.01
# Printable ASCII; HTTP drops spaces around a header's value, so a key neither starts nor ends with one.
KEY_PATTERN = rf"[\x21-\x7e](?:[\x20-\x7e]{{0,{MAX_KEY_CHARS - 2}}}[\x21-\x7e])?"
_KEY = re.compile(KEY_PATTERN)


def parse_key(raw: str | None) -> str | None:
    """Return the request's idempotency key, 1 to 255 printable ASCII characters; None when it sent none.

    The draft writes the key as a structured-field string (`"abc"`), taken without its quotes; any
    other value is taken as it is.
    """
    if raw is None:
        return None
    quoted = len(raw) > 2 and raw[0] == raw[-1] == '"' and _KEY.fullmatch(raw[1:-1])
    value = raw[1:-1] if quoted else raw
    if not _KEY.fullmatch(value):
        raise ApiError(
            400, "invalid_idempotency_key",
            f"{HEADER} must be 1 to {MAX_KEY_CHARS} printable ASCII characters.", {"length": len(value)},
        )  # fmt: skip
    return value


def fingerprint(body_digest: str, args: Mapping[str, str]) -> str:
    """Return what makes two submissions the same: the body's digest and every parameter not in ANSWER_ONLY."""
    shaping = "&".join(f"{name}={args[name]}" for name in sorted(args) if name not in ANSWER_ONLY)
    return hashlib.sha256(f"{body_digest}?{shaping}".encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """A key claimed for one submission: where the claim is, and the submission's fingerprint."""

    redis_key: str
    fingerprint: str


class Idempotency:
    """Claims idempotency keys in one Redis database."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl = ttl_seconds

    def claim(self, caller: str, key: str, print_: str) -> tuple[Claim, str | None]:
        """Claim `key` for this submission; return the claim, and the job id of an earlier one with that key.

        None means this request is the first: it must `record` its job, or `release` the claim if it makes none.
        """
        claim = Claim(keys.idempotency(caller, hashlib.sha256(key.encode()).hexdigest()), print_)
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            if self.client.set(claim.redis_key, print_, nx=True, ex=PENDING_SECONDS):
                return claim, None
            held = self.client.get(claim.redis_key)
            if held is None:
                continue  # released between the two calls: try to claim it again
            held_print, _, job_id = held.decode().partition(":")
            if held_print != print_:
                raise ApiError(
                    422, "idempotency_key_reused",
                    f"This {HEADER} was used for another request (another body or parameters); use a new key.",
                )  # fmt: skip
            if job_id:
                return claim, job_id
            if time.monotonic() >= deadline:
                raise ApiError(
                    409, "idempotency_key_in_use", f"A request with this {HEADER} is still being processed.",
                    headers={"Retry-After": "1"},
                )  # fmt: skip
            time.sleep(_POLL_SECONDS)

    def record(self, claim: Claim, job_id: str) -> None:
        """Write the job a claimed submission made, for its repeats, to live as long as the job."""
        self.client.set(claim.redis_key, f"{claim.fingerprint}:{job_id}", ex=self.ttl)

    def release(self, claim: Claim) -> None:
        """Drop a claim whose submission made no job, so that a repeat may try again."""
        self.client.delete(claim.redis_key)
