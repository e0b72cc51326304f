"""What a request handler needs, built once per app and passed in."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from flask import current_app

from api.errors import ApiError
from api.idempotency import Idempotency
from api.slots import Slots
from api.waiting import Waiters
from jobs import JobStore
from jobs.webhooks import Webhooks
from model_store import ModelStore, ModelStoreError
from settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingModel:
    """The model version a new job is pinned to, read from the store's pointer and manifest."""

    name: str
    version: int
    threshold: float
    input_fields: tuple[str, ...]
    variables: tuple[str, ...] = ()
    linear: bool = False


@dataclass(frozen=True)
class Services:
    """Settings and connections of one app."""

    settings: Settings
    redis: redis.Redis
    jobs: JobStore
    celery: Celery
    models: ModelStore
    waiters: Waiters
    webhooks: Webhooks
    idempotency: Idempotency
    streams: Slots

    def serving_model(self, requested: str | None = None, pinned: int | None = None) -> ServingModel:
        """Return the current version of a model (the configured one by default), or the `pinned` one, unloaded.

        A model or version the client named and the store does not hold is the client's error (404). The
        configured model not served yet, or a store that cannot be read now, may heal: 503 with
        Retry-After. A broken version will not heal by retrying: 500. The cause goes to the log only,
        since it names files of the server.
        """
        name = requested or self.settings.model_name
        try:
            version = self.models.current(name) if pinned is None else self._stored(name, pinned)
            if version is None and requested:
                raise ApiError(404, "model_not_found", f"No version of model {name!r} is served.", {"model": name})
            if version is None:
                log.warning("model %r: no version is promoted", name)
                raise _unavailable(name)
            manifest = self.models.manifest(name, version)
            threshold = float(manifest["threshold"])
            fields = tuple(manifest["input_fields"])
            variables = tuple(manifest.get("output_variables", ()))
            linear = manifest.get("linear") is True
        except OSError as exc:
            log.warning("model %r cannot be read: %s", name, exc)
            raise _unavailable(name) from None
        except (ModelStoreError, KeyError, ValueError, TypeError) as exc:
            log.error("model %r cannot be served: %s: %s", name, type(exc).__name__, exc)
            raise ApiError(
                500, "model_invalid", f"The serving version of model {name!r} is broken; it has been logged."
            ) from None
        return ServingModel(name, version, threshold, fields, variables, linear)

    def catalog(self) -> list[tuple[str, int | None, list[dict[str, Any]]]]:
        """Return every model of the store: its name, serving version and the manifest of each version.

        A version whose manifest cannot be read is left out (and logged), so one bad folder hides no other.
        """
        models = []
        for name in self.models.names():
            manifests = []
            for version in self.models.versions(name):
                try:
                    manifests.append(self.models.manifest(name, version))
                except (ModelStoreError, OSError) as exc:
                    log.warning("model %s v%s is left out of the catalog: %s", name, version, exc)
            models.append((name, self.models.current(name), manifests))
        return models

    def _stored(self, name: str, version: int) -> int:
        versions = self.models.versions(name)
        if version not in versions:
            details = {"model": name, "version": version, "versions": versions}
            code, what = ("version_not_found", f"Model {name!r} has no version {version}") if versions else (
                "model_not_found", f"No version of model {name!r} is stored")  # fmt: skip
            raise ApiError(404, code, f"{what}.", details)
        return version


def _unavailable(name: str) -> ApiError:
    return ApiError(
        503, "model_unavailable", f"Model {name!r} is not being served yet; retry shortly.",
        headers={"Retry-After": "5"},
    )  # fmt: skip


def services() -> Services:
    """Return the services of the running app."""
    return current_app.extensions["glmq"]
