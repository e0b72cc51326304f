"""How long the client waits before another attempt."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from client.retries import RetryPolicy, parse_retry_after


def test_waits_double_from_the_backoff_up_to_the_cap() -> None:
    policy = RetryPolicy(retries=6, backoff=0.5, max_delay=4.0)
    assert [policy.delay(attempt) for attempt in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_retry_after_replaces_the_backoff_but_not_the_cap() -> None:
    policy = RetryPolicy(backoff=0.5, max_delay=30.0)
    assert policy.delay(0, "7") == 7.0
    assert policy.delay(3, "0") == 0.0
    assert policy.delay(0, "3600") == 30.0


@pytest.mark.parametrize(("header", "seconds"), [("5", 5.0), (" 2.5 ", 2.5), ("-3", 0.0), ("", None), (None, None),
                                                 ("soon", None), ("nan", None)])  # fmt: skip
def test_retry_after_in_seconds(header, seconds) -> None:
    assert parse_retry_after(header) == seconds


def test_retry_after_as_an_http_date() -> None:
    seconds = parse_retry_after(formatdate(time.time() + 60, usegmt=True))
    assert seconds is not None and 55 <= seconds <= 61
    assert parse_retry_after(formatdate(time.time() - 60, usegmt=True)) == 0.0


def test_an_unreadable_retry_after_falls_back_to_the_backoff() -> None:
    assert RetryPolicy(backoff=0.25).delay(1, "whenever") == 0.5
