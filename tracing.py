"""Optional OpenTelemetry tracing, off unless an OTLP endpoint is set.

When on, spans run from the Flask request through the Celery message (its headers carry the trace
context) to the scoring in the worker. The OpenTelemetry SDK and instrumentations are imported
only when tracing is on, so a service without an endpoint pays nothing for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from settings import Settings

if TYPE_CHECKING:
    from flask import Flask
    from opentelemetry.sdk.trace.export import SpanExporter

# Probes and scrapes come every few seconds and say nothing about a job.
UNTRACED_URLS = "/health,/ready,/metrics"


def init_tracing(service_name: str, settings: Settings, exporter: SpanExporter | None = None) -> bool:
    """Trace this process's Celery messages when an endpoint or exporter is given; return whether tracing is on.

    Spans go to `settings.otel_exporter_otlp_endpoint` over OTLP/HTTP in batches, or to `exporter`
    (tests pass an in-memory one) as each ends. A process has one tracer provider: the first call
    installs it and later calls keep it, as when a test runs the API and a worker in one process.
    """
    if exporter is None and not settings.otel_exporter_otlp_endpoint:
        return False
    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            # Given in code, the endpoint is the full URL; as a variable it is the base, as here.
            base = settings.otel_exporter_otlp_endpoint.removesuffix("/")
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        else:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
    # Celery's signals are global: this traces publishing (the context goes into the message's
    # headers) and running (a task's span continues the context it finds there).
    instrumentor = CeleryInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    return True


def instrument_flask(app: Flask) -> None:
    """Give every request of `app` a span, the parent of the Celery messages it sends."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor.instrument_app(app, excluded_urls=UNTRACED_URLS)


def flush_tracing(timeout_millis: int = 5_000) -> None:
    """Send the spans still buffered, waiting at most `timeout_millis`; nothing to do when tracing is off."""
    from opentelemetry import trace

    flush = getattr(trace.get_tracer_provider(), "force_flush", None)  # only the SDK's provider buffers
    if flush is not None:
        flush(timeout_millis)
