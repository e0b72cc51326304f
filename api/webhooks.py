"""The `Webhook-Url` request header: refused at once unless webhooks are on and the URL is safe to call."""

from __future__ import annotations

from api.errors import ApiError
from jobs.targets import RefusedError, vet
from settings import Settings

HEADER = "Webhook-Url"


def parse_webhook_url(raw: str | None, settings: Settings) -> str:
    """Return the webhook URL a submission names, checked (jobs.targets.vet), or "" when it names none."""
    if raw is None:
        return ""
    if not settings.webhook_secret:
        raise ApiError(
            422, "webhooks_disabled",
            "This service signs no webhooks (WEBHOOK_SECRET is not set), so a Webhook-Url cannot be accepted.",
        )  # fmt: skip
    try:
        vet(raw, settings.webhook_allow_private, settings.webhook_allowed_hosts)
    except RefusedError as exc:
        message = f"The Webhook-Url cannot be called: {exc}."
        raise ApiError(422, "webhook_url_refused", message, {"url": raw[:2048]}) from None
    return raw
