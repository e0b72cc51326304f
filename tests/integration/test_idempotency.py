"""Concurrent duplicates against the real API (two gunicorn processes): one Idempotency-Key makes one job."""

from __future__ import annotations

import threading

import pytest
import requests

from jobs import keys

pytestmark = pytest.mark.integration
IDEMPOTENCY_DB = 8
RECORD = {"x12": "$1,000.00", "x31": "asia"}
CALLERS = 32


@pytest.fixture
def idle_db() -> int:
    return IDEMPOTENCY_DB


def test_32_concurrent_posts_with_one_key_make_one_job(idle_api, redis_server) -> None:
    url, _ = idle_api
    body = [RECORD] * 500
    start = threading.Barrier(CALLERS)
    answers: list[requests.Response] = []

    def post() -> None:
        start.wait()
        answers.append(requests.post(f"{url}/predict", json=body, headers={"Idempotency-Key": "k-32"}, timeout=60))

    threads = [threading.Thread(target=post) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == CALLERS
    assert {answer.status_code for answer in answers} == {202}
    assert len({answer.json()["task_id"] for answer in answers}) == 1
    assert sum(answer.headers.get("Idempotent-Replayed") == "true" for answer in answers) == CALLERS - 1
    assert len(redis_server.client(IDEMPOTENCY_DB).keys(keys.job("*"))) == 1
