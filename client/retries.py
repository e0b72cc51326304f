"""When the client tries a request again: urllib3's Retry on a requests adapter, and when a POST may be repeated."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, Self

import requests
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import InvalidHeader
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

log = logging.getLogger("client.retries")

# 503: Redis or the model is briefly unavailable. 429: rate limited. Both say "come back later".
RETRY_STATUSES = frozenset({429, 503})
# A POST carrying this header names one logical submission, so the service can recognise a repeat of it.
IDEMPOTENCY_KEY = "Idempotency-Key"


class ServiceRetry(Retry):
    """urllib3's Retry, retrying only 429 and 503, with Retry-After capped at `backoff_max`."""

    # Not 413, which urllib3 retries when it carries Retry-After: a body too large stays too large.
    RETRY_AFTER_STATUS_CODES = RETRY_STATUSES

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        """Return the seconds Retry-After asks for, at most `backoff_max`; None when absent or unreadable."""
        try:
            seconds = super().get_retry_after(response)
        except InvalidHeader:
            return None  # the backoff applies instead
        return None if seconds is None else min(seconds, self.backoff_max)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        """Count one more attempt and say why the client tries again, and when; raise when none remain."""
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        if response is not None and response.status in RETRY_STATUSES:
            why = f"the service answered {response.status}"
            after = retry.get_retry_after(response) if retry.respect_retry_after_header else None
        else:
            why = _reason(error) if error is not None else "no answer"
            after = None
        delay = retry.get_backoff_time() if after is None else after
        where = f"{_pool.host}:{_pool.port}" if _pool is not None else "the service"
        attempt = len(retry.history) + 1
        log.warning("retrying %s %s at %s: %s; attempt %d of %d in %.1f s", method, url, where, why, attempt,
                    attempt + (retry.total or 0), delay)  # fmt: skip
        return retry


def service_retry(retries: int, backoff: float = 0.5, max_delay: float = 30.0) -> ServiceRetry:
    """Return a Retry of up to `retries` further attempts on 429, 503 and transport failures.

    Retry-After is honoured; without it the waits grow as urllib3's backoff does (0, 2·backoff,
    4·backoff, ...), never above `max_delay`. When the attempts run out the last 429 or 503 is returned,
    so its error body can be reported.
    """
    return ServiceRetry(
        total=max(0, retries),
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff,
        backoff_max=max_delay,
        respect_retry_after_header=True,
        raise_on_status=False,
    )


class RetryingAdapter(HTTPAdapter):
    """Retry as `retry` says, and repeat a POST that may have reached the server only if it has an idempotency key.

    urllib3 decides by method alone. POST is not among Retry's allowed methods, so a plain POST is tried
    again only when its connection could not be made, before any byte reached the server. A POST that
    carries an Idempotency-Key goes through a twin adapter whose Retry allows POST as well.
    """

    def __init__(self, retry: Retry) -> None:
        super().__init__(max_retries=retry)
        methods = retry.allowed_methods
        keyed = retry if methods is None else retry.new(allowed_methods=frozenset(methods) | {"POST"})
        self._keyed = HTTPAdapter(max_retries=keyed)

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        """Send the request through the adapter whose Retry fits it."""
        if request.method == "POST" and IDEMPOTENCY_KEY in request.headers:
            return self._keyed.send(request, *args, **kwargs)
        return super().send(request, *args, **kwargs)

    def close(self) -> None:
        """Close the connection pools of both adapters."""
        self._keyed.close()
        super().close()


def retrying_session(retry: Retry) -> requests.Session:
    """Return a requests Session whose http and https requests retry as `retry` says."""
    session = requests.Session()
    adapter = RetryingAdapter(retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _reason(error: Exception) -> str:
    # urllib3's reasons read "HTTPConnection(host=..., port=...): Failed to establish ...: Connection refused".
    text = str(getattr(error, "reason", None) or error)
    return text.rsplit("): ", 1)[-1] or type(error).__name__
