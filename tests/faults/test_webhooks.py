"""Webhooks end to end: real workers POST signed events to real receivers on loopback.

Every request a receiver gets is checked with the `standardwebhooks` library. Retries are driven by
the watchdog (every second here) with a 0.3 s backoff base, so each test takes seconds.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from standardwebhooks import Webhook

from tests.faults.conftest import FaultStack
from tests.integration.test_client import run_cli
from tests.integration.test_metrics import scrape

pytestmark = pytest.mark.faults

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
RECORD = {"x5": "sunday", "x12": "$3709.93", "x31": "asia", "x81": "November", "x91": "0.5"}


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    event: dict[str, Any] | None  # None when the signature did not verify
    answered: int


@dataclass
class Receiver:
    """An HTTP server on loopback that verifies each request and answers as `answer(n)` says (n from 1)."""

    answer: Callable[[int], int]
    stall: threading.Event = field(default_factory=threading.Event)
    stall_first: bool = False
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {name.lower(): value for name, value in self.headers.items()}
                try:
                    event = Webhook(SECRET).verify(body, headers)
                except Exception:
                    event = None
                number = len(receiver.requests) + 1
                status = receiver.answer(number)
                receiver.requests.append(Received(headers, body, event, status))
                receiver.arrived.set()
                if number == 1 and receiver.stall_first:
                    receiver.stall.wait(30)  # the worker making this attempt is killed meanwhile
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/glmq?source=test"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.stall.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_stack(fault_stack: FaultStack) -> Iterator[FaultStack]:
    fault_stack.env.update(
        WEBHOOK_SECRET=SECRET, WEBHOOK_ALLOW_PRIVATE="1", WEBHOOK_RETRY_BASE_SECONDS="0.3", WEBHOOK_MAX_ATTEMPTS="6"
    )
    yield fault_stack


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


def submit(stack: FaultStack, url: str, records: Any = RECORD) -> str:
    response = requests.post(f"{stack.url}/predict", json=records, headers={"Webhook-Url": url}, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["task_id"]


def delivery_ended(stack: FaultStack, task_id: str, timeout: float = 90) -> dict[str, Any]:
    """Poll the task until its webhook delivery is no longer pending; return the task's status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = requests.get(f"{stack.url}/tasks/{task_id}?limit=1", timeout=30).json()
        if body["webhook"]["state"] != "pending":
            return body
        time.sleep(0.2)
    raise AssertionError(f"the delivery of {task_id} is still pending: {body['webhook']}")


def test_three_500s_then_a_2xx_deliver_one_event_and_a_410_stops_the_attempts(webhook_stack, receivers,
                                                                              report) -> None:  # fmt: skip
    flaky, gone, dead = Receiver(lambda n: 500 if n <= 3 else 204), Receiver(lambda n: 410), Receiver(lambda n: 500)
    receivers.extend([flaky, gone, dead])
    webhook_stack.env["WEBHOOK_MAX_ATTEMPTS"] = "4"  # the flaky receiver's 2xx comes at the last attempt
    webhook_stack.start_api()
    # No worker yet: this job waits, and the API's cancel ends it and sends its event to the queue.
    cancelled = submit(webhook_stack, gone.url, [RECORD] * 1_200)
    assert requests.delete(f"{webhook_stack.url}/tasks/{cancelled}", timeout=30).status_code == 200
    task_id = submit(webhook_stack, flaky.url, [RECORD] * 1_200)  # three chunks
    unanswered = submit(webhook_stack, dead.url)
    webhook_stack.start_worker("worker")

    status = delivery_ended(webhook_stack, task_id)
    ended = delivery_ended(webhook_stack, cancelled)
    abandoned = delivery_ended(webhook_stack, unanswered)
    time.sleep(2)  # room for any attempt too many: a retry would come within 0.3 s and a sweep
    assert [r.answered for r in flaky.requests] == [500, 500, 500, 204]
    assert [r.answered for r in gone.requests] == [410]
    assert [r.answered for r in dead.requests] == [500] * 4
    assert (abandoned["webhook"]["state"], abandoned["webhook"]["attempts"]) == ("abandoned", 4)
    # The workers' counts of each attempt's outcome, read back through the API's /metrics.
    samples = scrape(webhook_stack.url)
    counted = {
        labels[0][1]: value for (name, labels), value in samples.items() if name == "glmq_webhook_deliveries_total"
    }
    assert counted == {"delivered": 1, "retried": 3 + 3, "gone": 1, "abandoned": 1}
    assert all(r.event is not None for r in flaky.requests + gone.requests), "a signature did not verify"
    assert {r.headers["webhook-id"] for r in flaky.requests} == {f"msg_{task_id}"}
    assert len({r.body for r in flaky.requests}) == 1  # the same event every time
    event = flaky.requests[0].event
    assert event["type"] == "job.succeeded"
    assert event["data"] == {
        "task_id": task_id, "status": "succeeded", "rows": 1_200, "rows_done": 1_200,
        "model": {"name": "glm26", "version": 1}, "threshold": 0.712,
        "status_url": f"{webhook_stack.url}/tasks/{task_id}",
    }  # fmt: skip
    assert requests.get(event["data"]["status_url"], timeout=30).json()["status"] == "succeeded"
    assert flaky.requests[0].headers["content-type"] == "application/json"
    webhook = status["webhook"]
    assert (webhook["state"], webhook["attempts"], webhook["last_status"]) == ("delivered", 4, 204)
    assert webhook["delivered_at"] >= status["finished_at"]

    event = gone.requests[0].event
    assert (event["type"], event["data"]["status"], event["data"]["rows_done"]) == ("job.failed", "failed", 0)
    webhook = ended["webhook"]
    assert (webhook["state"], webhook["attempts"], webhook["last_status"]) == ("gone", 1, 410)
    assert "delivered_at" not in webhook and "next_attempt_at" not in webhook
    report("webhook retries", {"attempts": len(flaky.requests), "attempts after a 410": len(gone.requests)})


def test_a_worker_killed_during_a_delivery_loses_nothing(webhook_stack, receivers, report) -> None:
    receiver = Receiver(lambda n: 200, stall_first=True)
    receivers.append(receiver)
    victim = webhook_stack.start_worker("victim")
    webhook_stack.start_api()
    task_id = submit(webhook_stack, receiver.url)
    assert receiver.arrived.wait(60), "the first attempt never came"
    victim.signal_group(signal.SIGKILL)
    killed_at = time.monotonic()
    webhook_stack.start_worker("survivor")

    status = delivery_ended(webhook_stack, task_id)
    recovered_s = time.monotonic() - killed_at
    time.sleep(2)
    accepted = [r for r in receiver.requests[1:] if 200 <= r.answered < 300]
    assert len(accepted) == 1 and len(receiver.requests) == 2
    assert {r.headers["webhook-id"] for r in receiver.requests} == {f"msg_{task_id}"}
    assert all(r.event is not None for r in receiver.requests)
    webhook = status["webhook"]
    assert (webhook["state"], webhook["attempts"], webhook["last_status"]) == ("delivered", 2, 200)
    report("webhook worker kill", {"attempts": len(receiver.requests), "seconds from kill to delivered":
                                   round(recovered_s, 1)})  # fmt: skip


def test_the_cli_sends_its_webhook_url_and_a_refused_one_is_exit_2(webhook_stack, receivers, tmp_path) -> None:
    receiver = Receiver(lambda n: 204)
    receivers.append(receiver)
    webhook_stack.start_api()
    webhook_stack.start_worker("worker")
    records = tmp_path / "records.json"
    records.write_text(json.dumps([RECORD] * 3))

    done = run_cli(str(records), "--url", webhook_stack.url, "--webhook-url", receiver.url)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["row"] for line in done.stdout.splitlines()] == [0, 1, 2]
    (arrived,) = _arrivals(receiver, 1)
    assert arrived.event is not None, "the signature did not verify"
    task_id = arrived.event["data"]["task_id"]
    assert (arrived.event["type"], arrived.event["data"]["rows"]) == ("job.succeeded", 3)
    assert delivery_ended(webhook_stack, task_id)["webhook"]["url"] == receiver.url

    refused = run_cli(str(records), "--url", webhook_stack.url, "--webhook-url", "http://0.0.0.0/hook")
    assert refused.returncode == 2, refused.stderr
    assert "error: 422 webhook_url_refused: The Webhook-Url cannot be called" in refused.stderr
    assert "hint: give --webhook-url an https URL of a public host" in refused.stderr


def _arrivals(receiver: Receiver, count: int, timeout: float = 60) -> list[Received]:
    deadline = time.monotonic() + timeout
    while len(receiver.requests) < count:
        assert time.monotonic() < deadline, f"{len(receiver.requests)} of {count} requests arrived"
        time.sleep(0.1)
    return receiver.requests
