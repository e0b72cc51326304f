"""One JSON error shape for every failure, `schemas.Error`: {"error": {"code", "message", "details"?}}."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response
from kombu.exceptions import OperationalError
from msgspec import UNSET
from werkzeug.exceptions import HTTPException

from api.schemas import Error, ErrorBody, respond

log = logging.getLogger(__name__)

# Stable codes for the statuses Werkzeug raises on its own.
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    408: "request_timeout",
    411: "length_required",
    413: "body_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    417: "expectation_failed",
    422: "unprocessable",
    429: "rate_limited",
    431: "headers_too_large",
    500: "internal_error",
    501: "not_implemented",
}


class ApiError(Exception):
    """An error the client can act on."""

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    """Return the JSON error answer."""
    return respond(Error(ErrorBody(code, message, UNSET if details is None else details)), status)


def init_app(app: Flask) -> None:
    """Answer every error, of any origin, with the JSON error shape."""

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        response = error_response(exc.status, exc.code, exc.message, exc.details)
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = error_response(status, HTTP_CODES.get(status, "http_error"), exc.description or exc.name)
        for name, value in exc.get_headers():
            if name.lower() in ("allow", "retry-after"):
                response.headers[name] = value
        return response

    @app.errorhandler(redis.exceptions.OutOfMemoryError)
    def redis_full(exc: Exception) -> Response:
        # Redis refuses writes past maxmemory (noeviction: jobs are never evicted). The job's writes are one
        # transaction, so nothing of it was stored; the client may come back once results expire or are read.
        log.warning("redis is full: %s", exc)
        response = error_response(503, "redis_full", "The job store is full; retry later.")
        response.headers["Retry-After"] = "30"
        return response

    @app.errorhandler(redis.ConnectionError)
    @app.errorhandler(redis.TimeoutError)
    @app.errorhandler(OperationalError)
    def redis_down(exc: Exception) -> Response:
        log.warning("redis unavailable: %s", type(exc).__name__)
        response = error_response(503, "redis_unavailable", "The job store is unavailable; retry shortly.")
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "An unexpected error occurred; it has been logged.")
