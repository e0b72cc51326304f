"""The HTTP API: validates, enqueues and answers. It never loads a model."""

from __future__ import annotations

import logging

from flask import Flask

from api import bodies, docs, errors, events, metrics, params, probes, routes
from api.idempotency import Idempotency
from api.services import Services
from api.slots import Slots
from api.waiting import Waiters
from jobs import JobStore
from jobs.broker import make_celery
from jobs.connection import connect
from jobs.webhooks import Webhooks
from jobs.webhooks import on_end as webhook_sender
from model_store import ModelStore
from settings import Settings
from tracing import init_tracing, instrument_flask


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app from settings (the environment by default)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    if init_tracing("glmq-api", settings):  # before auth, so refused requests have spans too
        instrument_flask(app)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    client = connect(settings, socket_timeout=5, socket_connect_timeout=2, health_check_interval=10)
    celery = make_celery(settings)
    webhooks = Webhooks(client, settings.result_ttl_seconds)
    app.extensions["glmq"] = Services(
        settings=settings,
        redis=client,
        # A job the API ends (a cancel) has its webhook sent from here, as a worker would.
        jobs=JobStore(
            client,
            settings.result_ttl_seconds,
            settings.job_deadline_seconds,
            webhook_sender(celery, webhooks),
            wait_replicas=settings.redis_wait_replicas,
        ),
        celery=celery,
        models=ModelStore(settings.model_store_dir),
        waiters=Waiters(settings, settings.max_waiters),
        webhooks=webhooks,
        idempotency=Idempotency(client, settings.result_ttl_seconds),
        streams=Slots(settings, settings.max_streams, socket_timeout=events.KEEPALIVE_SECONDS + 5),
    )
    errors.init_app(app)
    metrics.init_app(app)  # app-wide hooks run before the blueprint's guard, so refused requests are timed too
    bodies.init_app(app)  # after metrics: a refused body is timed too
    params.init_app(app)  # after the timer starts, so a refused parameter is timed too
    app.register_blueprint(routes.bp)  # behind the API key guard
    app.register_blueprint(events.bp)  # behind the same guard
    app.register_blueprint(probes.bp)
    app.register_blueprint(docs.bp)
    logging.getLogger(__name__).info("api settings: %s", settings.describe())
    return app
