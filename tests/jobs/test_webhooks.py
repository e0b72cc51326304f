"""Webhook deliveries in Redis: one claim per attempt, at most one attempt at a time, retries scheduled."""

import random
import time
from dataclasses import replace

import msgspec
import pytest

from jobs import JobStore, NewJob, keys
from jobs.webhooks import ATTEMPT_SECONDS, CLAIM_SECONDS, DeliveryState, Event, Webhooks, backoff

URL = "https://hooks.example.com/in"


@pytest.fixture
def webhooks(redis_db) -> Webhooks:
    return Webhooks(redis_db, ttl_seconds=600)


@pytest.fixture
def ended(redis_db) -> list[list[str]]:
    return []


@pytest.fixture
def hooked_jobs(redis_db, ended) -> JobStore:
    return JobStore(redis_db, ttl_seconds=600, deadline_seconds=60, on_end=ended.append)


@pytest.fixture
def job_id(hooked_jobs: JobStore, new_job: NewJob) -> str:
    job_id, _ = hooked_jobs.create(replace(new_job, rows=2, webhook_url=URL, base_url="http://api:1313/"), [{}, {}])
    return job_id


def test_a_job_with_a_webhook_is_watched_from_its_creation(redis_db, job_id: str) -> None:
    assert redis_db.zscore(keys.WEBHOOKS, job_id) > time.time() + 60  # past its deadline: a fallback only
    assert redis_db.hget(keys.job(job_id), "webhook_url").decode() == URL


def test_nothing_is_claimed_while_the_job_runs(webhooks: Webhooks, job_id: str, redis_db) -> None:
    now = time.time()
    assert webhooks.claim([job_id], now) == []
    assert redis_db.zscore(keys.WEBHOOKS, job_id) > now  # looked at again later
    assert webhooks.get(job_id) is None


def test_the_call_that_ends_the_job_reports_it_once(hooked_jobs: JobStore, job_id: str, new_job: NewJob,
                                                    ended) -> None:  # fmt: skip
    other, _ = hooked_jobs.create(new_job, [{}] * 5)  # no webhook: never reported
    hooked_jobs.finish_chunk(job_id, 0, 2, b"[{}, {}]")
    hooked_jobs.finish_chunk(job_id, 0, 2, b"[{}, {}]")  # a duplicate ends nothing
    hooked_jobs.fail(job_id, "too late")  # already ended
    hooked_jobs.fail(other, "cancelled")
    assert ended == [[job_id]]


def test_a_failed_job_is_reported_too(hooked_jobs: JobStore, job_id: str, ended) -> None:
    assert hooked_jobs.fail(job_id, "cancelled by the client", code="job_cancelled")
    assert ended == [[job_id]]


def test_an_ended_job_gets_one_claim_per_attempt(hooked_jobs: JobStore, webhooks: Webhooks, job_id: str,
                                                 redis_db) -> None:  # fmt: skip
    hooked_jobs.finish_chunk(job_id, 0, 2, b"[{}, {}]")
    now = time.time()
    assert webhooks.claim([job_id], now) == [(job_id, 1)]
    assert webhooks.claim([job_id], now + 1) == []  # one claim, one message, while the claim holds
    assert redis_db.zscore(keys.WEBHOOKS, job_id) == pytest.approx(now + CLAIM_SECONDS)
    attempt = webhooks.start(job_id, 1, now)
    assert attempt is not None and attempt.url == URL and attempt.body is None
    assert attempt.message_id == f"msg_{job_id}"
    assert webhooks.start(job_id, 1, now) is None  # a duplicate message runs nothing
    assert webhooks.claim([job_id], now + 1) == []  # an attempt is under way
    assert redis_db.zscore(keys.WEBHOOKS, job_id) == pytest.approx(now + ATTEMPT_SECONDS)


def test_a_failed_attempt_schedules_the_next_and_keeps_the_body(hooked_jobs: JobStore, webhooks: Webhooks,
                                                                job_id: str, redis_db) -> None:  # fmt: skip
    hooked_jobs.finish_chunk(job_id, 0, 2, b"[{}, {}]")
    body = msgspec.json.encode(Event.of(hooked_jobs.get(job_id)))
    webhooks.claim([job_id])
    first = webhooks.start(job_id, 1)
    webhooks.keep_body(job_id, body)
    due = time.time() + 30
    assert webhooks.finish(first, DeliveryState.PENDING, status=500, next_at=due)
    assert redis_db.zscore(keys.WEBHOOKS, job_id) == pytest.approx(due)
    delivery = webhooks.get(job_id)
    assert (delivery.state, delivery.attempts, delivery.last_status, delivery.next_at) == ("pending", 1, 500, due)
    assert webhooks.claim([job_id], due - 1) == []  # not yet due
    assert webhooks.claim([job_id], due + 1) == [(job_id, 2)]
    second = webhooks.start(job_id, 2, due + 1)
    assert second.body == body
    assert not webhooks.finish(first, DeliveryState.DELIVERED, status=200)  # a stale attempt records nothing
    assert webhooks.finish(second, DeliveryState.DELIVERED, status=204)
    delivery = webhooks.get(job_id)
    assert (delivery.state, delivery.attempts, delivery.last_status) == ("delivered", 2, 204)
    assert delivery.delivered_at and delivery.next_at is None
    assert redis_db.zscore(keys.WEBHOOKS, job_id) is None
    assert webhooks.claim([job_id], due + 3600) == []
    assert webhooks.stats.read().webhooks == {"retried": 1, "delivered": 1}  # the stale attempt is not counted


def test_an_attempt_lost_with_its_worker_is_claimed_again_when_its_time_is_up(
    hooked_jobs: JobStore, webhooks: Webhooks, job_id: str
) -> None:
    hooked_jobs.finish_chunk(job_id, 0, 2, b"[{}, {}]")
    now = time.time()
    webhooks.claim([job_id], now)
    webhooks.start(job_id, 1, now)  # ... and the worker dies
    assert webhooks.claim([job_id], now + ATTEMPT_SECONDS - 1) == []
    assert webhooks.due(now + ATTEMPT_SECONDS + 1) == [job_id]
    assert webhooks.claim([job_id], now + ATTEMPT_SECONDS + 1) == [(job_id, 2)]


def test_the_event_carries_the_status_without_results(hooked_jobs: JobStore, job_id: str) -> None:
    hooked_jobs.finish_chunk(job_id, 0, 2, b"[{}, {}]")
    event = msgspec.json.decode(msgspec.json.encode(Event.of(hooked_jobs.get(job_id))))
    assert event["type"] == "job.succeeded"
    assert event["data"] == {
        "task_id": job_id, "status": "succeeded", "rows": 2, "rows_done": 2,
        "model": {"name": "glm26", "version": 1}, "threshold": 0.712,
        "status_url": f"http://api:1313/tasks/{job_id}",
    }  # fmt: skip


def test_backoff_doubles_with_jitter_and_spans_about_a_day() -> None:
    rng = random.Random(7)
    delays = [backoff(n, 20.0, rng) for n in range(1, 13)]
    for n, delay in enumerate(delays, start=1):
        assert 0.75 * 20 * 2 ** (n - 1) <= delay <= 1.25 * 20 * 2 ** (n - 1)
    assert 18 * 3600 < sum(delays) < 30 * 3600
