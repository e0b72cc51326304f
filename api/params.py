"""Query parameters: each view names the ones it takes, and any other is refused (`422 unknown_parameter`).

A misspelled parameter (`?modle=churn`) would otherwise be ignored, and the job scored with the
defaults: a plausible, wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app, request

from api.errors import ApiError

View = TypeVar("View", bound=Callable[..., object])
# Flask's own static files: a cache-busting query string is harmless there.
_OPEN_ENDPOINTS = frozenset({"static"})


def takes(*names: str) -> Callable[[View], View]:
    """Declare the query parameters a view reads; the others are refused before it runs."""

    def mark(view: View) -> View:
        view.query_parameters = frozenset(names)  # type: ignore[attr-defined]
        return view

    return mark


def check_parameters() -> None:
    """Refuse a request holding a query parameter its view does not take."""
    if not request.args or request.endpoint is None or request.endpoint in _OPEN_ENDPOINTS:
        return
    view = current_app.view_functions.get(request.endpoint)
    accepted: frozenset[str] = getattr(view, "query_parameters", frozenset())
    unknown = sorted(set(request.args) - accepted)
    if unknown:
        takes_text = ", ".join(sorted(accepted)) or "none"
        raise ApiError(
            422, "unknown_parameter", f"Unknown query parameter {unknown[0]!r}; this endpoint takes: {takes_text}.",
            {"unknown": unknown, "accepted": sorted(accepted)},
        )  # fmt: skip


def init_app(app: Flask) -> None:
    """Check every request's query parameters, before its view and its blueprint's guard."""
    app.before_request(check_parameters)
