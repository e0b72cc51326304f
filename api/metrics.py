"""GET /metrics: the queue's state for Prometheus, e.g. to decide how many workers to run."""

from __future__ import annotations

from flask import Blueprint, Response

from api.errors import ApiError
from api.services import services
from jobs.broker import QUEUE

bp = Blueprint("metrics", __name__)
UNACKED = "unacked"  # kombu's hash of messages delivered to a worker and not yet acknowledged


@bp.get("/metrics")
def metrics() -> Response:
    """Answer gauges in the Prometheus text format, read from Redis at the time of the request."""
    svc = services()
    pipe = svc.redis.pipeline(transaction=False)
    pipe.llen(QUEUE)
    pipe.hlen(UNACKED)
    waiting, delivered = pipe.execute()
    lines = [
        *_gauge("glmq_chunks_waiting", "Chunk messages queued for a worker.", waiting),
        *_gauge("glmq_chunks_delivered", "Chunk messages a worker holds and has not acknowledged.", delivered),
        *_gauge("glmq_jobs_unfinished", "Jobs accepted and neither succeeded nor failed.", svc.jobs.unfinished()),
    ]
    try:
        model = svc.serving_model()
    except ApiError:
        lines += _gauge("glmq_model_served", "1 when a model is served.", 0)
    else:
        lines += _gauge(
            "glmq_model_served", "1 when a model is served.", 1, f'name="{model.name}",version="{model.version}"'
        )
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


def _gauge(name: str, help_text: str, value: int, labels: str = "") -> list[str]:
    sample = f"{name}{{{labels}}}" if labels else name
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{sample} {value}"]
