"""Oversized bodies against a real gunicorn: every one gets the JSON 413, and a kept-alive connection goes on."""

from __future__ import annotations

import collections
import http.client
import json
import urllib.error
import urllib.request

import pytest
import requests

from tests.faults.conftest import FaultStack

pytestmark = pytest.mark.faults

LIMIT = 200_000
TRIES = 100
GOOD = {"x5": "sunday", "x12": "$3709.93", "x31": "asia", "x81": "November", "x91": "0.5"}


def body_of(size: int) -> bytes:
    filler = b'{"x12": "' + b"a" * (size - 12) + b'"}'
    return b"[" + filler[: size - 2] + b"]"


def urllib_outcome(url: str, body: bytes) -> str:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return f"{response.status}"
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {json.loads(exc.read())['error']['code']}"
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        return type(getattr(exc, "reason", exc)).__name__


def session_outcomes(session: requests.Session, url: str, body: bytes) -> tuple[str, str]:
    """Send an oversized body, then a valid record on the same session; return both outcomes."""
    try:
        response = session.post(url, data=body, headers={"Content-Type": "application/json"}, timeout=30)
        refused = f"{response.status_code} {response.json()['error']['code']}"
    except requests.RequestException as exc:
        refused = type(exc).__name__
    try:
        following = str(session.post(url, json=GOOD, timeout=30).status_code)
    except requests.RequestException as exc:
        following = type(exc).__name__
    return refused, following


def chunks(body: bytes, size: int = 16_384):
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_every_oversized_body_gets_its_json_413(fault_stack: FaultStack, report) -> None:
    fault_stack.env["MAX_BODY_BYTES"] = str(LIMIT)
    fault_stack.start_api()
    url = f"{fault_stack.url}/predict"
    figures: dict[str, collections.Counter[str]] = {}
    with requests.Session() as session:
        for times in (2, 10):
            body = body_of(times * LIMIT)
            assert len(body) == times * LIMIT
            figures[f"urllib {times}x"] = collections.Counter(urllib_outcome(url, body) for _ in range(TRIES))
            pairs = [session_outcomes(session, url, body) for _ in range(TRIES)]
            figures[f"session {times}x"] = collections.Counter(refused for refused, _ in pairs)
            figures[f"session {times}x, next"] = collections.Counter(following for _, following in pairs)
            # A chunked body declares no length: the API finds the excess as it reads.
            chunked = [session_outcomes(session, url, chunks(body)) for _ in range(TRIES // 10)]
            figures[f"chunked {times}x"] = collections.Counter(refused for refused, _ in chunked)
            figures[f"chunked {times}x, next"] = collections.Counter(following for _, following in chunked)
    report("oversized bodies", {name: dict(counts) for name, counts in figures.items()})
    for name, counts in figures.items():
        expected = "202" if name.endswith("next") else "413 body_too_large"
        assert counts == {expected: sum(counts.values())}, name
