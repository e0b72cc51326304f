"""The fields of the service's answers that this client reads, as paths into their JSON.

A test holds these against the service's OpenAPI document, and another feeds the client answers cut
down to exactly these fields: a field renamed on either side fails a test, not a user's job.
"""

from __future__ import annotations

FieldPath = tuple[str, ...]
ITEMS = "[]"  # a step into each item of an array

# The 202 of POST /predict, read into Submitted.
ACCEPTED: frozenset[FieldPath] = frozenset(
    {("task_id",), ("rows",), ("threshold",), ("model", "name"), ("model", "version"), ("status_url",)}
)

# A result row: its number, and what the summary and the CSV output show.
_RESULT: frozenset[FieldPath] = frozenset(
    {("row",), ("business_outcome",), ("phat",), ("error", "field"), ("error", "message")}
)

# The 200 of GET /tasks/{task_id}, read while waiting and paging.
TASK: frozenset[FieldPath] = frozenset(
    {("status",), ("rows",), ("rows_done",), ("error", "code"), ("error", "message"), ("page",)}
    | {("results", ITEMS, *path) for path in _RESULT}
)

# The data of a `progress` event of GET /tasks/{task_id}/events; its final event's data is read as TASK.
PROGRESS: frozenset[FieldPath] = frozenset({("rows_done",), ("rows",)})

# Every error answer, read into ClientError.
ERROR: frozenset[FieldPath] = frozenset({("error", "code"), ("error", "message"), ("error", "details")})
