"""The service's row limit per request, as its OpenAPI document or a 413 answer states it."""

from __future__ import annotations

from typing import Any

from client.errors import ClientError


def max_rows_in_spec(spec: Any) -> int | None:
    """Return the most records one POST /predict may carry, from the OpenAPI document; None if it says nothing."""
    try:
        schema = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    except (KeyError, TypeError):
        return None
    if not isinstance(schema, dict):
        return None
    variants = schema.get("anyOf") or schema.get("oneOf") or [schema]
    limits = [v["maxItems"] for v in variants if isinstance(v, dict) and isinstance(v.get("maxItems"), int)]
    return min(limits) if limits else None


def max_rows_in_refusal(error: ClientError) -> int | None:
    """Return the row limit a 413 too_many_rows names in its details; None for any other error."""
    if error.status != 413 or error.code != "too_many_rows" or not isinstance(error.details, dict):
        return None
    limit = error.details.get("max_rows")
    return limit if isinstance(limit, int) and limit > 0 else None
