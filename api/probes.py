"""The open probes, which need no API key: GET /health (liveness) and GET /ready (readiness)."""

from __future__ import annotations

from flask import Blueprint, Response

from api.schemas import Health, ModelRef, Ready, respond
from api.services import services
from jobs.leases import Leases

bp = Blueprint("probes", __name__)


@bp.get("/health")
def health() -> Response:
    """Answer that the process is up."""
    return respond(Health("ok"))


@bp.get("/ready")
def ready() -> Response:
    """Answer whether a job would be accepted now: Redis answers and a model is served (503 if not).

    With no live worker the answer is still 200, since jobs are accepted, but says `no_workers`.
    """
    svc = services()
    workers = Leases(svc.redis, svc.settings.lease_seconds).workers_alive()
    model = svc.serving_model()
    return respond(Ready("ready" if workers else "no_workers", ModelRef(model.name, model.version), workers))
