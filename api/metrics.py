"""GET /metrics for Prometheus: the queue and the service's counts, read from Redis at scrape time,
and the latency of this process's HTTP requests.

Each app has a registry of its own, so several apps in one process (as in the tests) never clash.
The counts of rows and of job times are the whole service's, since every process adds to them in
Redis (jobs.stats); the HTTP histogram is kept in memory, by the process that served the requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import redis
from flask import Blueprint, Flask, Response, current_app, g, request
from kombu.exceptions import OperationalError
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from api.errors import ApiError
from api.services import Services
from jobs import keys
from jobs.broker import queue_depth
from jobs.leases import Leases

bp = Blueprint("metrics", __name__)
log = logging.getLogger(__name__)
REGISTRY = "glmq.metrics"
# Up to the longest ?wait= a request may ask for (30 s); slower still is +Inf.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Any other method string a client sends is one label value, so it cannot grow the series.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ServiceCollector:
    """Yields the queue's gauges and the service's counts, read from Redis when Prometheus scrapes."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def describe(self) -> Iterator[Metric]:
        """Name the families, so the registry refuses another collector that would repeat one."""
        yield from _families().values()

    def collect(self) -> Iterator[Metric]:
        """Read Redis and the model store now, and yield every family."""
        svc = self.services
        families = _families()
        try:
            pipe = svc.redis.pipeline(transaction=False)
            pipe.hlen(keys.UNACKED)
            pipe.llen(keys.READY)
            delivered, small_waiting = pipe.execute()
            waiting, unfinished, snapshot = queue_depth(svc.celery), svc.jobs.unfinished(), svc.jobs.stats.read()
            workers = Leases(svc.redis, svc.settings.lease_seconds).workers_alive()
        except (redis.RedisError, OperationalError) as exc:
            # Say so in a gauge, and still serve what needs no Redis: an outage is when latency matters.
            log.warning("metrics cannot read redis: %s", type(exc).__name__)
            families["glmq_redis_up"].add_metric([], 0)
            families = {name: families[name] for name in ("glmq_redis_up", "glmq_model_served")}
        else:
            families["glmq_redis_up"].add_metric([], 1)
            families["glmq_chunks_waiting"].add_metric([], waiting)
            families["glmq_chunks_delivered"].add_metric([], delivered)
            families["glmq_small_jobs_waiting"].add_metric([], small_waiting)
            families["glmq_jobs_unfinished"].add_metric([], unfinished)
            families["glmq_workers_alive"].add_metric([], workers)
            for model, count in sorted(snapshot.rows.items()):
                families["glmq_rows_scored"].add_metric([model], count.scored)
                families["glmq_rows_failed"].add_metric([model], count.failed)
            for (model, status), histogram in sorted(snapshot.job_seconds.items()):
                buckets = [(floatToGoString(bound), count) for bound, count in histogram.buckets]
                families["glmq_job_duration_seconds"].add_metric([model, status], buckets, histogram.total)
            for kind, count in sorted(snapshot.poison.items()):
                families["glmq_messages_dead_lettered"].add_metric([kind], count)
            for outcome, count in sorted(snapshot.webhooks.items()):
                families["glmq_webhook_deliveries"].add_metric([outcome], count)
        try:
            model = svc.serving_model()
        except ApiError:
            served = families["glmq_model_served"]
            families[served.name] = GaugeMetricFamily(served.name, served.documentation, value=0)
        else:
            families["glmq_model_served"].add_metric([model.name, str(model.version)], 1)
        yield from families.values()


def _families() -> dict[str, Metric]:
    families: list[Metric] = [
        GaugeMetricFamily("glmq_redis_up", "1 when this scrape could read Redis, which the other families need."),
        GaugeMetricFamily("glmq_chunks_waiting", "Chunk messages queued for a worker."),
        GaugeMetricFamily("glmq_chunks_delivered", "Chunk messages a worker holds and has not acknowledged."),
        GaugeMetricFamily("glmq_small_jobs_waiting", "Small jobs in line for a micro-batch."),
        GaugeMetricFamily("glmq_jobs_unfinished", "Jobs accepted and neither succeeded nor failed."),
        GaugeMetricFamily("glmq_workers_alive", "Worker processes whose heartbeat renewed within a lease."),
        GaugeMetricFamily("glmq_model_served", "1 when a model is served.", labels=["name", "version"]),
        CounterMetricFamily("glmq_rows_scored", "Rows scored, per model.", labels=["model"]),
        CounterMetricFamily("glmq_rows_failed", "Rows that got a per-row error instead of a score.", labels=["model"]),
        CounterMetricFamily(
            "glmq_messages_dead_lettered", "Broker messages no worker could run, by kind.", labels=["kind"]
        ),
        CounterMetricFamily(
            "glmq_webhook_deliveries",
            "Webhook delivery attempts, by outcome: delivered, retried (another attempt is due), gone, abandoned.",
            labels=["outcome"],
        ),
        HistogramMetricFamily(
            "glmq_job_duration_seconds", "Seconds from a job's submission to its end.", labels=["model", "status"]
        ),
    ]
    return {family.name: family for family in families}


def init_app(app: Flask) -> None:
    """Serve /metrics from a registry of this app's own, and time every request it serves."""
    registry = CollectorRegistry()
    registry.register(ServiceCollector(app.extensions["glmq"]))
    latency = Histogram(
        "glmq_http_request_duration_seconds",
        "Seconds to serve an HTTP request, in this API process, by method, route and status.",
        ["method", "route", "status"],
        buckets=HTTP_BUCKETS,
        registry=registry,
    )
    app.extensions[REGISTRY] = registry

    @app.before_request
    def start_clock() -> None:
        g.glmq_started = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        started = g.pop("glmq_started", None)
        if started is not None:
            # The rule, not the path: a task id in every URL would make a series per task.
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            method = request.method if request.method in METHODS else "other"
            latency.labels(method, route, str(response.status_code)).observe(time.perf_counter() - started)
        return response

    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics() -> Response:
    """Answer every metric in the Prometheus text format."""
    return Response(generate_latest(current_app.extensions[REGISTRY]), content_type=CONTENT_TYPE_PLAIN_0_0_4)
