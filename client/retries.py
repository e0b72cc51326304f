"""When to try a request again, and how long to wait first."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

# 503: Redis or the model is briefly unavailable. 429: rate limited. Both say "come back later".
RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """Up to `retries` further attempts, waiting backoff * 2**n, or Retry-After, never above `max_delay`."""

    retries: int = 5
    backoff: float = 0.5
    max_delay: float = 30.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Return the seconds to wait after failed attempt number `attempt` (0 for the first)."""
        asked = parse_retry_after(retry_after)
        wanted = asked if asked is not None else self.backoff * 2**attempt
        return max(0.0, min(wanted, self.max_delay))


def parse_retry_after(value: str | None) -> float | None:
    """Return the seconds a Retry-After header asks for (delta-seconds or an HTTP date), if readable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000" in an HTTP date means GMT
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None
