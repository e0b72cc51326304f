"""GET /tasks/<id>/events against the real stack: a 100,000-row job's stream, read whole and with a reconnect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

pytestmark = pytest.mark.integration
RECORD = {"x12": "$1,000.00", "x31": "asia", "x5": "monday"}
ROWS = 100_000


def messages(response: requests.Response) -> Iterator[dict[str, Any]]:
    """Yield the messages of an event stream as they arrive, the data parsed; comments are counted apart."""
    fields: dict[str, Any] = {}
    for line in response.iter_lines(decode_unicode=True):
        if line:
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.removeprefix(" ")
            continue
        if "event" in fields:
            yield {**fields, "data": json.loads(fields["data"])}
        fields = {}


def stream(url: str, task_id: str, after: str | None = None) -> requests.Response:
    headers = {"Last-Event-ID": after} if after else {}
    response = requests.get(f"{url}/tasks/{task_id}/events", headers=headers, stream=True, timeout=60)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/event-stream")
    return response


def test_a_big_jobs_stream_shows_monotone_progress_ends_once_and_resumes_without_loss(stack) -> None:
    accepted = stack.submit([RECORD] * ROWS)
    assert accepted.status_code == 202, accepted.text
    task_id = accepted.json()["task_id"]
    whole = stream(stack.url, task_id)
    interrupted = stream(stack.url, task_id)
    first = []
    for message in messages(interrupted):
        first.append(message)
        if len(first) == 5:
            break
    interrupted.close()  # the connection drops mid-job
    resumed = list(messages(stream(stack.url, task_id, after=first[-1]["id"])))
    seen = list(messages(whole))

    kinds = [m["event"] for m in seen]
    assert kinds == ["progress"] * (len(seen) - 1) + ["succeeded"]
    done = [m["data"]["rows_done"] for m in seen[:-1]]
    assert done == sorted(set(done)) and done[-1] == ROWS  # rising at each event, to every row
    assert len(done) == ROWS // 2_000  # one event per chunk
    assert {m["data"]["rows"] for m in seen[:-1]} == {ROWS}
    final = seen[-1]["data"]
    assert (final["task_id"], final["status"], final["rows_done"], "results" in final) == (
        task_id, "succeeded", ROWS, False,
    )  # fmt: skip
    assert first + resumed == seen  # the reconnect missed nothing and repeated nothing
    after_end = requests.get(
        f"{stack.url}/tasks/{task_id}/events", headers={"Last-Event-ID": seen[-1]["id"]}, timeout=30
    )
    assert after_end.status_code == 204
