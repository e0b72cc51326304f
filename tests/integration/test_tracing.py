"""Tracing across real processes: gunicorn and a prefork worker send one trace to an OTLP/HTTP collector."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from jobs.broker import SCORE_CHUNK
from stack.processes import free_port, start_api, start_worker

pytestmark = pytest.mark.integration
TRACING_DB = 6
RECORD = {"x5": "sunday", "x12": "$3709.93", "x31": "asia", "x81": "November", "x91": "0.5"}


@dataclass
class Collector:
    """What a stand-in OpenTelemetry collector received: (path, service name, span) per span."""

    received: list[tuple[str, str, Span]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def spans(self) -> list[tuple[str, str, Span]]:
        with self.lock:
            return list(self.received)


@pytest.fixture
def collector() -> Iterator[tuple[str, Collector]]:
    """An OTLP/HTTP receiver on a free port, decoding what it gets with the protocol's own types."""
    collected = Collector()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            request = ExportTraceServiceRequest.FromString(body)
            with collected.lock:
                for resource_spans in request.resource_spans:
                    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            collected.received.append((self.path, attributes["service.name"], span))
            answer = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: object) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", collected
    server.shutdown()
    server.server_close()


def test_the_api_and_a_worker_process_send_one_trace_for_a_job(redis_server, stack_env, collector, tmp_path) -> None:
    endpoint, collected = collector
    redis_server.client(TRACING_DB).flushdb()
    env = {
        **stack_env,
        "REDIS_URL": redis_server.url_of(TRACING_DB),
        "SMALL_JOB_ROWS": "0",  # every job is a chunk message of its own
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        # The SDK's batch delay, in ms: no batch leaves on a timer, so the spans arrive only if each
        # process sends what it holds as it exits.
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
    }
    worker = start_worker(env, tmp_path, name="traced", concurrency=1)
    try:
        bind = f"127.0.0.1:{free_port()}"
        api = start_api(env, tmp_path, bind)
        try:
            response = requests.post(f"http://{bind}/predict", json=[RECORD], timeout=30)
            assert response.status_code == 202, response.text
            task_id = response.json()["task_id"]
            status = requests.get(f"http://{bind}/tasks/{task_id}?wait=30", timeout=60).json()["status"]
            assert status == "succeeded"
        finally:
            api.stop()
    finally:
        worker.stop()

    spans = {span.name: (service, span) for _, service, span in collected.spans()}
    assert "score chunk" in spans, sorted(spans)
    chain = [spans["score chunk"]]
    while parent := chain[-1][1].parent_span_id:
        chain.append(next((service, s) for service, s in spans.values() if s.span_id == parent))

    assert [(service, span.name) for service, span in chain] == [
        ("glmq-worker", "score chunk"),
        ("glmq-worker", f"run/{SCORE_CHUNK}"),
        ("glmq-api", f"apply_async/{SCORE_CHUNK}"),
        ("glmq-api", "POST /predict"),
    ]
    assert len({span.trace_id for _, span in chain}) == 1
    assert {path for path, _, _ in collected.spans()} == {"/v1/traces"}
