"""Tracing: one trace from the Flask request through the Celery message to the scoring; nothing when off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from flask.testing import FlaskClient
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from api import create_app
from jobs.broker import DRAIN, SCORE_CHUNK, make_celery
from settings import Secret, Settings
from tracing import init_tracing

ROOT = Path(__file__).parents[2]
TRACING_DB = 6
RECORD = {"x5": "sunday", "x12": "$3709.93", "x31": "asia", "x81": "November", "x91": "0.5"}


@pytest.fixture(scope="module")
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def client(redis_server, model_store_dir, exporter) -> Iterator[FlaskClient]:
    """The API's test client, and a real Celery worker in a thread of this process, both traced."""
    redis_server.client(TRACING_DB).flushdb()
    settings = Settings(
        redis_url=Secret(redis_server.url_of(TRACING_DB)),
        model_store_dir=model_store_dir,
        chunk_rows=100,
        small_job_rows=2,  # one record is micro-batched, three are a chunk of their own
        # Turns tracing on in the API and the worker. They keep the process's tracer provider,
        # installed first below with the in-memory exporter, so nothing is ever sent here.
        otel_exporter_otlp_endpoint="http://127.0.0.1:4318",
    )
    assert init_tracing("glmq-tests", settings, exporter)
    worker_app = make_celery(settings, include=["worker.tasks"])
    # The solo pool runs tasks in the worker's thread and, like a pool process, sends worker_process_init.
    with start_worker(worker_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        app = create_app(settings)
        yield app.test_client()
        FlaskInstrumentor.uninstrument_app(app)
        app.extensions["glmq"].redis.close()
    CeleryInstrumentor().uninstrument()
    from worker.tasks import process_state

    process_state.cache_clear()


def submit_and_wait(client: FlaskClient, records: list[dict[str, Any]]) -> str:
    """Submit records, wait until the job succeeded and return its id."""
    response = client.post("/predict", json=records)
    assert response.status_code == 202, response.get_json()
    task_id = response.get_json()["task_id"]
    deadline = time.monotonic() + 60
    while (body := client.get(f"/tasks/{task_id}?wait=5").get_json())["status"] not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"task {task_id} still {body['status']}"
    assert body["status"] == "succeeded", body
    return task_id


def finished_span(exporter: InMemorySpanExporter, name: str, job_id: str) -> ReadableSpan:
    """Return the ended span of that name that scored the job, waiting for it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for span in exporter.get_finished_spans():
            attributes = span.attributes or {}
            if span.name == name and job_id in (attributes.get("glmq.job_id"), *attributes.get("glmq.job_ids", ())):
                return span
        time.sleep(0.05)
    raise AssertionError(f"no span {name} for job {job_id}: {[s.name for s in exporter.get_finished_spans()]}")


def ancestors(exporter: InMemorySpanExporter, span: ReadableSpan) -> list[ReadableSpan]:
    """Return the span's parent, grandparent and so on, up to the root, each waited for until it ended."""
    chain = []
    while span.parent is not None:
        parent_id = span.parent.span_id
        deadline = time.monotonic() + 30
        while not (found := [s for s in exporter.get_finished_spans() if s.context.span_id == parent_id]):
            assert time.monotonic() < deadline, f"the parent of {span.name} never ended"
            time.sleep(0.05)
        span = found[0]
        chain.append(span)
    return chain


def test_a_chunk_is_scored_in_the_trace_of_the_request_that_submitted_it(client, exporter) -> None:
    task_id = submit_and_wait(client, [RECORD] * 3)

    scored = finished_span(exporter, "score chunk", task_id)
    chain = ancestors(exporter, scored)

    assert [(s.name, s.kind) for s in chain] == [
        (f"run/{SCORE_CHUNK}", SpanKind.CONSUMER),
        (f"apply_async/{SCORE_CHUNK}", SpanKind.PRODUCER),
        ("POST /predict", SpanKind.SERVER),
    ]
    assert {s.context.trace_id for s in [scored, *chain]} == {scored.context.trace_id}
    assert scored.attributes == {
        "glmq.job_id": task_id,
        "glmq.chunk": 0,
        "glmq.rows": 3,
        "glmq.model": "glm26",
        "glmq.model_version": 1,
    }
    assert chain[-1].attributes is not None and chain[-1].attributes.get("http.route") == "/predict"


def test_a_micro_batch_is_scored_in_the_trace_of_the_request_that_sent_its_drain_message(client, exporter) -> None:
    task_id = submit_and_wait(client, [RECORD])

    scored = finished_span(exporter, "score batch", task_id)
    chain = ancestors(exporter, scored)

    assert [(s.name, s.kind) for s in chain] == [
        (f"run/{DRAIN}", SpanKind.CONSUMER),
        (f"apply_async/{DRAIN}", SpanKind.PRODUCER),
        ("POST /predict", SpanKind.SERVER),
    ]
    assert {s.context.trace_id for s in [scored, *chain]} == {scored.context.trace_id}
    assert scored.attributes == {
        "glmq.job_ids": (task_id,),
        "glmq.rows": 1,
        "glmq.model": "glm26",
        "glmq.model_version": 1,
    }


def test_probes_are_not_traced_and_other_requests_are(client, exporter) -> None:
    exporter.clear()
    assert client.get("/health").status_code == 200
    assert client.get("/tasks/0123456789abcdef0123456789abcdef").status_code == 404
    served = [span.name for span in exporter.get_finished_spans() if span.kind == SpanKind.SERVER]
    assert served == ["GET /tasks/<task_id>"]


# Run in a fresh interpreter: this module's own tests install tracing in the test process.
OFF = """
import json, sys
from api import create_app
from settings import Settings
app = create_app(Settings.from_env())
assert app.test_client().get("/health").status_code == 200
api_modules = sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[1:])))

from opentelemetry import trace
from jobs.broker import make_celery
import worker.tasks
make_celery(Settings.from_env(), include=["worker.tasks"]).set_current()
worker.tasks.start_tracing()
with worker.tasks.tracer.start_as_current_span("score chunk") as span:
    recording = span.is_recording()
print(json.dumps({
    "api_modules": api_modules,
    "worker_modules": sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[1:]))),
    "provider": type(trace.get_tracer_provider()).__name__,
    "recording": recording,
}))
"""
TRACING_MODULES = [
    "opentelemetry.sdk.trace",
    "opentelemetry.instrumentation.flask",
    "opentelemetry.instrumentation.celery",
    "opentelemetry.exporter",
]


def test_without_an_endpoint_nothing_is_traced_nor_even_imported(model_store_dir) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    env |= {"MODEL_STORE_DIR": str(model_store_dir), "REDIS_URL": "redis://127.0.0.1:9/0"}  # never connected
    done = subprocess.run(
        [sys.executable, "-c", OFF, *TRACING_MODULES], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.splitlines()[-1])
    assert facts == {"api_modules": [], "worker_modules": [], "provider": "ProxyTracerProvider", "recording": False}
