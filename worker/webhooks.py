"""The webhook delivery task: one signed POST per attempt, its outcome recorded, the next one scheduled."""

from __future__ import annotations

import functools
import logging
import time
from datetime import UTC, datetime

import msgspec
import urllib3
from celery import shared_task
from standardwebhooks import Webhook

from jobs.broker import DELIVER_WEBHOOK, chunk_args
from jobs.deadletter import dead_letter
from jobs.targets import RefusedError, Target, vet
from jobs.webhooks import TIMEOUT_SECONDS, Attempt, DeliveryState, Event, Webhooks, backoff
from settings import Settings
from worker.tasks import process_state

log = logging.getLogger(__name__)
GONE = 410
USER_AGENT = "glm-queue-webhooks/1"


@functools.cache
def webhooks() -> Webhooks:
    """Return this process's webhook store, on the process's Redis connection."""
    state = process_state()
    return Webhooks(state.jobs.client, state.settings.result_ttl_seconds)


@shared_task(name=DELIVER_WEBHOOK)
def deliver(*args: object) -> None:
    """Make attempt n of a job's webhook delivery, if it is still the next one; safe to run more than once.

    The arguments are `job_id, attempt`; a message with anything else is dead-lettered.
    """
    state = process_state()
    parsed = chunk_args(args)
    if parsed is None or parsed[1] < 1:
        dead_letter(state.jobs.client, repr(args)[:1000], "bad_arguments", "deliver takes a job id and an attempt")
        return
    job_id, number = parsed
    store = webhooks()
    attempt = store.start(job_id, number)
    if attempt is None:
        return
    settings = state.settings
    if number > settings.webhook_max_attempts:  # the last attempts died with their workers
        store.finish(attempt, DeliveryState.ABANDONED, error="no attempt left")
        return
    body = attempt.body
    if body is None:
        job = state.jobs.get(job_id)
        if job is None:
            store.finish(attempt, DeliveryState.ABANDONED, error="the job expired before its event was built")
            return
        body = msgspec.json.encode(Event.of(job))
        store.keep_body(job_id, body)
    status, error = attempt_post(attempt, body, settings)
    outcome, next_at = decide(status, number, settings)
    store.finish(attempt, outcome, status, error, next_at)
    log.info("webhook of job %s, attempt %d: %s (%s)", job_id, number, outcome.value, status or error)


def decide(status: int | None, attempt: int, settings: Settings) -> tuple[DeliveryState, float | None]:
    """Return what an attempt's answer makes of the delivery, and when the next attempt is due if any."""
    if status is not None and 200 <= status < 300:
        return DeliveryState.DELIVERED, None
    if status == GONE:
        return DeliveryState.GONE, None
    if attempt >= settings.webhook_max_attempts:
        return DeliveryState.ABANDONED, None
    return DeliveryState.PENDING, time.time() + backoff(attempt, settings.webhook_retry_base_seconds)


def attempt_post(attempt: Attempt, body: bytes, settings: Settings) -> tuple[int | None, str]:
    """POST the signed event once; return the HTTP status (None when there was none) and what went wrong."""
    try:
        target = vet(attempt.url, settings.webhook_allow_private, settings.webhook_allowed_hosts)
    except RefusedError as exc:  # resolves elsewhere now (DNS rebinding), or not at all
        return None, f"refused: {exc}"
    try:
        headers = signed_headers(settings.webhook_secret.reveal(), attempt.message_id, body, time.time())
        return post(target, body, headers), ""
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    except Exception as exc:  # a defect: recorded as this attempt's failure, so the delivery is not stuck
        log.exception("webhook of job %s, attempt %d", attempt.job_id, attempt.number)
        return None, f"{type(exc).__name__}"


def signed_headers(secret: str, message_id: str, body: bytes, now: float) -> dict[str, str]:
    """Return the Standard Webhooks headers of a body sent at `now` (epoch seconds)."""
    timestamp = int(now)
    signature = Webhook(secret).sign(message_id, datetime.fromtimestamp(timestamp, UTC), body.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def post(target: Target, body: bytes, headers: dict[str, str], ca_certs: str | None = None) -> int:
    """POST to the address that was vetted, naming the host in Host (and SNI); no redirects, 5 s timeouts.

    An https certificate must be valid for the host name, by the system's CAs (or `ca_certs`).
    """
    timeout = urllib3.Timeout(connect=TIMEOUT_SECONDS, read=TIMEOUT_SECONDS)
    pool: urllib3.HTTPConnectionPool
    if target.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            target.address, target.port, timeout=timeout, retries=False, maxsize=1,
            server_hostname=target.host, assert_hostname=target.host, cert_reqs="CERT_REQUIRED", ca_certs=ca_certs,
        )  # fmt: skip
    else:
        pool = urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False, maxsize=1)
    with pool:
        response = pool.urlopen(
            "POST", target.path, body=body, headers={**headers, "host": target.netloc},
            redirect=False, retries=False, preload_content=False, assert_same_host=False,
        )  # fmt: skip
        status = response.status
        response.close()  # the answer's body is not ours to read
    return status
