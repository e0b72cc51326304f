"""No pickle on any reachable path: a pickled Celery message is refused, never executed."""

import pickle
import time
import uuid

import pytest
from kombu import Connection

from jobs.broker import QUEUE, SCORE_CHUNK

pytestmark = pytest.mark.faults


class Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickled_message_is_rejected_and_never_executed(fault_stack, real_rows, tmp_path, report) -> None:
    worker = fault_stack.start_worker("w1", concurrency=1)
    fault_stack.start_api()
    marker = tmp_path / "pwned"
    task_id = uuid.uuid4().hex
    body = pickle.dumps(((Payload(str(marker)), 0), {}, {}))
    with Connection(fault_stack.redis.url) as connection:
        connection.Producer().publish(
            body,
            routing_key=QUEUE,
            content_type="application/x-python-serialize",
            content_encoding="binary",
            headers={"lang": "py", "task": SCORE_CHUNK, "id": task_id, "root_id": task_id, "retries": 0},
        )
    deadline = time.monotonic() + 30
    while "pickle" not in worker.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = worker.log_path.read_text()
    good = fault_stack.submit(real_rows["rows"][0]["values"]).json()["task_id"]
    after = fault_stack.wait_all([good], timeout=60)[good]["status"]
    report("pickle injection", {"marker created": marker.exists(), "refused in log": "pickle" in log,
                                "queue left": fault_stack.redis.client().llen(QUEUE), "next job": after})  # fmt: skip
    assert "Refusing to deserialize untrusted content of type pickle" in log
    assert not marker.exists()
    assert after == "succeeded"
