"""urllib3's Retry as the client sets it up: what is tried again, how long it waits, when a POST may repeat."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import pytest
import requests
from urllib3 import HTTPResponse

from client.retries import IDEMPOTENCY_KEY, ServiceRetry, retrying_session, service_retry
from tests.client.scripted import Reply, ScriptedServer, accepted, error

BODY = b'{"x12": "$1.00"}'
KEYED = {"Content-Type": "application/json", IDEMPOTENCY_KEY: "k" * 32}
PLAIN = {"Content-Type": "application/json"}


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with retrying_session(service_retry(3, backoff=0.01)) as session:
        yield session


def asked(header: str | None, retry: ServiceRetry | None = None) -> float | None:
    headers = {} if header is None else {"Retry-After": header}
    return (retry or service_retry(5)).get_retry_after(HTTPResponse(status=503, headers=headers))


def test_the_waits_double_from_the_second_retry_up_to_the_cap() -> None:
    retry = service_retry(6, backoff=0.5, max_delay=4.0)
    waits = []
    for _ in range(6):
        retry = retry.increment("GET", "/tasks/a", response=HTTPResponse(status=503))
        waits.append(retry.get_backoff_time())
    assert waits == [0, 1.0, 2.0, 4.0, 4.0, 4.0]


@pytest.mark.parametrize(("header", "seconds"), [("5", 5), (" 7 ", 7), ("0", 0), ("3600", 30.0), (None, None),
                                                 ("", None), ("soon", None), ("2.5", None)])  # fmt: skip
def test_retry_after_in_seconds_is_capped_and_an_unreadable_one_is_ignored(header, seconds) -> None:
    assert asked(header, service_retry(5, max_delay=30.0)) == seconds


def test_retry_after_as_an_http_date() -> None:
    seconds = asked(formatdate(time.time() + 20, usegmt=True))
    assert seconds is not None and 15 <= seconds <= 21
    assert asked(formatdate(time.time() - 60, usegmt=True)) == 0


def test_a_post_without_a_key_is_not_repeated_after_an_answer(server: ScriptedServer, session) -> None:
    server.script(error(503, "redis_unavailable", "Retry shortly.", Retry_After="0"), accepted())
    response = session.post(server.url + "/predict", data=BODY, headers=PLAIN, timeout=5)
    assert response.status_code == 503
    assert len(server.seen) == 1


def test_a_post_with_a_key_is_repeated_after_a_503_or_429(server: ScriptedServer, session) -> None:
    server.script(
        error(503, "redis_unavailable", "Retry shortly.", Retry_After="0"),
        error(429, "rate_limited", "Too many requests.", Retry_After="0"),
        accepted(),
    )
    response = session.post(server.url + "/predict", data=BODY, headers=KEYED, timeout=5)
    assert response.status_code == 202
    assert [seen.headers[IDEMPOTENCY_KEY] for seen in server.seen] == ["k" * 32] * 3
    assert [seen.body for seen in server.seen] == [BODY] * 3


def test_a_post_without_a_key_is_not_repeated_after_a_read_timeout(server: ScriptedServer, session) -> None:
    server.script(Reply(**{**vars(accepted()), "delay": 1.0}), accepted())
    with pytest.raises(requests.Timeout):
        session.post(server.url + "/predict", data=BODY, headers=PLAIN, timeout=0.2)
    assert len(server.seen) == 1  # it reached the server: sending it again could make a second job


def test_a_post_with_a_key_is_repeated_after_a_read_timeout(server: ScriptedServer, session) -> None:
    server.script(Reply(**{**vars(accepted()), "delay": 1.0}), accepted())
    response = session.post(server.url + "/predict", data=BODY, headers=KEYED, timeout=0.2)
    assert response.status_code == 202
    assert len(server.seen) == 2


def test_a_get_is_repeated_after_a_read_timeout(server: ScriptedServer, session) -> None:
    server.script(Reply(200, {"status": "queued"}, delay=1.0), Reply(200, {"status": "running"}))
    assert session.get(server.url + "/tasks/a", timeout=0.2).json() == {"status": "running"}
    assert len(server.seen) == 2


def test_a_post_whose_connection_failed_is_tried_again_even_without_a_key() -> None:
    with socket.socket() as probe:  # a port that nothing listens on, yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started: list[ScriptedServer] = []

    class StartsTheServerWhenItWaits(ServiceRetry):
        """While it waits before the next attempt, start the server that the first attempt missed."""

        def sleep(self, response: Any = None) -> None:
            if not started:
                server = ScriptedServer(port)
                server.script(accepted())
                server.start()
                started.append(server)
            super().sleep(response)

    try:
        with retrying_session(StartsTheServerWhenItWaits(total=2)) as session:
            response = session.post(f"http://127.0.0.1:{port}/predict", data=BODY, headers=PLAIN, timeout=5)
        assert response.status_code == 202
        assert [seen.body for seen in started[0].seen] == [BODY]  # the refused attempt never arrived
    finally:
        for server in started:
            server.stop()
