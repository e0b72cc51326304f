"""The OpenAPI document: paths written here, every schema generated from the types that the routes answer with."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec

from api import idempotency
from api.batches import record_type
from api.errors import HTTP_CODES
from api.events import KEEPALIVE_SECONDS, RETRY_AFTER_SECONDS
from api.formats import MAX_COLUMNS, MAX_LINE_BYTES
from api.ids import MAX_ID_FIELD_CHARS
from api.results import result_keys
from api.schemas import RESPONSES, Accepted, Error, Health, Models, Progress, Ready, Task
from api.waiting import MAX_WAIT_SECONDS
from jobs.targets import MAX_URL_CHARS
from jobs.webhooks import Event
from model_store import NAME_PATTERN
from settings import Settings

_REF = "#/components/schemas/{name}"
# One Server-Sent Event; `data` is JSON, of the shape `x-events` names for its type.
_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+-[0-9]+$"},
        "event": {"type": "string", "enum": ["progress", "succeeded", "failed"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}


def build_spec(
    settings: Settings,
    input_fields: tuple[str, ...] = (),
    models: Mapping[str, tuple[str, ...]] | None = None,
    variables: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of this deployment: its limits and the input fields of each model.

    The request body is the default model's record; `x-models` names each served model's own
    record (`Record_<name>`), for `?model=<name>`. `?fields=` takes the default model's result keys.
    """
    record = record_type(input_fields)
    body = record | Annotated[list[record], msgspec.Meta(min_length=1, max_length=settings.max_batch_rows)]  # type: ignore[valid-type]
    records = {name: record_type(fields, f"Record_{name}") for name, fields in (models or {}).items()}
    (body_schema, *_), components = msgspec.json.schema_components(
        [body, *RESPONSES, Event, *records.values()], ref_template=_REF
    )
    served = {name: {"input_fields": list(fields), "record": {"$ref": _REF.format(name=f"Record_{name}")}}
              for name, fields in (models or {}).items()}  # fmt: skip
    security = [{"bearer": []}] if settings.api_keys else []
    task_id = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
    threshold = _query("threshold", "The cutoff of business_outcome (default: the model's).", "number",
                       minimum=0, maximum=1)  # fmt: skip
    model = _query("model", f"The model to score with (default: {settings.model_name}).", "string",
                   pattern=f"^{NAME_PATTERN}$")  # fmt: skip
    offset = _query("offset", "First row of the page of results (default 0).", "integer", minimum=0)
    limit = _query("limit", "Most rows in the page of results (default: every remaining row).", "integer", minimum=1)
    version = _query("version", "A stored version of the model to score with (default: its serving version).",
                     "integer", minimum=1)  # fmt: skip
    strict = _query("strict", "Make a row error of every field the model does not read (default: a warning).",
                    "boolean")  # fmt: skip
    wait = _query("wait", f"Seconds to hold the answer until the job ends (at most {MAX_WAIT_SECONDS:g}).", "number",
                  exclusiveMinimum=0, maximum=MAX_WAIT_SECONDS)  # fmt: skip
    id_field = _query("id_field", "A field whose raw value each result row echoes as `id` (null where absent); "
                      "it need not be a model input.", "string", minLength=1, maxLength=MAX_ID_FIELD_CHARS,
                      pattern='^[^\\x00-\\x1f"\\\\]+$')  # fmt: skip
    fields = _query("fields", "Comma-separated result keys to keep (business_outcome, phat, a model variable, "
                    "contributions, intercept); `row` and `id` are always kept. Default: all.", "string",
                    pattern=_list_of(result_keys(variables)))  # fmt: skip
    explain = _query("explain", "Add `contributions` (coefficient x model input, per variable) and `intercept` to "
                     "each scored row; 422 explain_unsupported for a model that is not linear.", "boolean")  # fmt: skip
    text = {"type": "string"}
    unknown = _answer(Error, "unknown_parameter: a query parameter this endpoint does not take")
    webhook_url = {
        "name": "Webhook-Url",
        "in": "header",
        "required": False,
        "description": "Where to POST a signed job.succeeded or job.failed event when the job ends (see `webhooks`). "
        "https (http only where private targets are allowed); a URL whose host resolves to a loopback, private, "
        "link-local or reserved address is refused (422 webhook_url_refused), and so is any URL when the service "
        "has no signing secret (422 webhooks_disabled).",
        "schema": {"type": "string", "maxLength": MAX_URL_CHARS},
    }
    location = {"Location": {"schema": {"type": "string"}}}
    key = {
        "name": idempotency.HEADER, "in": "header", "required": False,
        "description": "Names one submission of this caller: a repeat with the same body and parameters within "
        "RESULT_TTL_SECONDS answers with the first one's job (and Idempotent-Replayed: true); another body with "
        "the same key is 422 idempotency_key_reused. Quotes around it (\"key\") are not part of it.",
        "schema": {"type": "string", "pattern": f"^{idempotency.KEY_PATTERN}$"},
    }  # fmt: skip
    replayed = {idempotency.REPLAYED: {"description": "true: the answer of an earlier request with this key",
                                       "schema": {"type": "string", "enum": ["true"]}}}  # fmt: skip
    in_use = "idempotency_key_in_use: a request with this key is still being processed; retry after Retry-After"
    reused = (
        "a request error of the body or the parameters, webhook_url_refused, webhooks_disabled, or "
        "idempotency_key_reused (the key came with another request)"
    )
    last_event_id = {
        "name": "Last-Event-ID", "in": "header", "required": False,
        "description": "The id of the last event received: the stream resumes after it.",
        "schema": {"type": "string", "pattern": "^[0-9]{1,20}-[0-9]{1,20}$"},
    }  # fmt: skip
    events = {
        "description": f"The job's events, as Server-Sent Events: `progress` (data: Progress) each time a chunk "
        f"is scored, then one `succeeded` or `failed` (data: the Task, without results; a cancelled job's is "
        f"`failed` with job_cancelled), and the stream ends. Each event's `id` resumes the stream (Last-Event-ID); "
        f"a comment line comes every {KEEPALIVE_SECONDS} s while nothing else does.",
        "content": {"text/event-stream": {"schema": _EVENT}},
        "x-events": {"progress": {"$ref": _REF.format(name=Progress.__name__)},
                     "succeeded": {"$ref": _REF.format(name=Task.__name__)},
                     "failed": {"$ref": _REF.format(name=Task.__name__)}},
    }  # fmt: skip
    return {
        "openapi": "3.1.0",
        "info": {"title": "glm-queue", "version": "1", "description": "Queue-based scoring of tabular models."},
        "paths": {
            "/predict": {
                "post": {
                    "operationId": "predict",
                    "security": security,
                    "parameters": [
                        threshold,
                        model,
                        version,
                        strict,
                        wait,
                        webhook_url,
                        id_field,
                        fields,
                        explain,
                        key,
                    ],
                    "requestBody": {
                        "required": True,
                        "description": f"One record, or a list of 1 to {settings.max_batch_rows} records; "
                        f"at most {settings.max_body_bytes} bytes (decompressed). Or the same records as CSV "
                        f"(RFC 4180, a header row, UTF-8 with an optional BOM, empty cells missing, at most "
                        f"{MAX_COLUMNS} columns) or NDJSON (one object per line, blank lines skipped); no line "
                        f"of either may exceed {MAX_LINE_BYTES} bytes. Any of the three may be sent with "
                        "Content-Encoding: gzip; the limit then applies to the decompressed body.",
                        "content": {
                            "application/json": {"schema": body_schema},
                            "text/csv": {"schema": text},
                            "application/x-ndjson": {"schema": text},
                        },
                        "x-max-body-bytes": settings.max_body_bytes,
                        "x-models": served,
                    },
                    "responses": {
                        "200": _answer(
                            Task, "With wait: the job ended in time; its status, as GET /tasks/{task_id}.", replayed
                        ),
                        "202": _answer(Accepted, "Accepted; poll the Location.", location | replayed),
                        "400": _answer(Error, "malformed_json, empty_body or invalid_idempotency_key"),
                        "409": _answer(Error, in_use),
                        "422": _answer(Error, reused),
                        **_errors(401, 413, 415, 429),
                        "404": _answer(Error, "model_not_found or version_not_found"),
                        "500": _answer(Error, "model_invalid: the serving version is broken; retrying will not help"),
                        "503": _answer(Error, "redis_unavailable, redis_full or model_unavailable"),
                    },
                }
            },
            "/tasks/{task_id}": {
                "get": {
                    "operationId": "task",
                    "security": security,
                    "parameters": [task_id, offset, limit, wait],
                    "responses": {
                        "200": _answer(
                            Task,
                            "The task's status, with results once it succeeded or was cancelled (a row "
                            "that was not scored then has the error code `cancelled`).",
                        ),
                        **_errors(401, 429),
                        "404": _answer(Error, "task_not_found"),
                        "422": _answer(Error, "invalid_page, invalid_wait or unknown_parameter"),
                        "503": _answer(Error, "redis_unavailable"),
                    },
                },
                "delete": {
                    "operationId": "cancel",
                    "security": security,
                    "parameters": [task_id],
                    "responses": {
                        "200": _answer(
                            Task,
                            "Cancelled: the task is failed with error code job_cancelled; it keeps the results "
                            "of the chunks already scored, and its other rows say `cancelled` (GET /tasks/{task_id}).",
                        ),
                        **_errors(401, 429),
                        "404": _answer(Error, "task_not_found"),
                        "409": _answer(Error, "task_finished"),
                        "422": unknown,
                        "503": _answer(Error, "redis_unavailable"),
                    },
                },
            },
            "/tasks/{task_id}/results": {
                "get": {
                    "operationId": "results",
                    "security": security,
                    "description": "Every result of a succeeded job, streamed one stored chunk at a time, in the "
                    "format the Accept header picks (JSON by default). CSV has a header row; its columns are the "
                    "row keys in order, with contributions as contrib_<variable> and error as error_field, "
                    "error_message.",
                    "parameters": [task_id],
                    "responses": {
                        "200": {
                            "description": (
                                "The results, in input order (a cancelled job's: its scored rows, and a cancelled"
                                " row for each other)."
                            ),
                            "headers": {"ETag": {"schema": {"type": "string"}}},
                            "content": {
                                "application/json": {
                                    "schema": {"type": "array", "items": {"$ref": _REF.format(name="ResultRow")}}
                                },
                                "application/x-ndjson": {"schema": text},
                                "text/csv": {"schema": text},
                            },
                        },
                        "304": {"description": "Not modified: If-None-Match holds the ETag."},
                        **_errors(401, 406, 429),
                        "404": _answer(Error, "task_not_found (unknown, or its results expired)"),
                        "409": _answer(
                            Error,
                            "task_unfinished, or task_failed (failed other than by a cancel), with the status_url",
                        ),
                        "422": unknown,
                        "503": _answer(Error, "redis_unavailable"),
                    },
                }
            },
            "/tasks/{task_id}/events": {
                "get": {
                    "operationId": "events",
                    "security": security,
                    "parameters": [task_id, last_event_id],
                    "responses": {
                        "200": events,
                        "204": {"description": "Last-Event-ID was the final event: nothing more will come."},
                        "400": _answer(Error, "invalid_last_event_id"),
                        **_errors(401, 429),
                        "404": _answer(Error, "task_not_found"),
                        "422": unknown,
                        "503": _answer(
                            Error, f"too_many_streams (Retry-After: {RETRY_AFTER_SECONDS}) or redis_unavailable"
                        ),
                    },
                }
            },
            "/models": {
                "get": {
                    "operationId": "models",
                    "security": security,
                    "responses": {
                        "200": _answer(
                            Models, "Every model, its versions, the serving one, and each version's fields."
                        ),
                        **_errors(401, 429),
                        "422": unknown,
                    },
                }
            },
            "/health": {"get": {"operationId": "health", "responses": {"200": _answer(Health, "Up."), "422": unknown}}},
            "/ready": {
                "get": {
                    "operationId": "ready",
                    "responses": {
                        "200": _answer(
                            Ready,
                            "Redis answers and a model is served: a job would be accepted. `no_workers`: no worker "
                            "process is alive, so accepted jobs wait.",
                        ),
                        "422": unknown,
                        "500": _answer(Error, "model_invalid"),
                        "503": _answer(Error, "redis_unavailable or model_unavailable"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "Metrics in the Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "422": unknown,
                    },
                }
            },
        },
        "webhooks": {"jobEnded": _job_ended()},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}, "schemas": components},
    }


def _job_ended() -> dict[str, Any]:
    signed = [
        ("webhook-id", "The event's id, `msg_<task_id>`: the same on every attempt, so receivers can deduplicate."),
        ("webhook-timestamp", "When this attempt was signed, in Unix seconds."),
        ("webhook-signature", "`v1,<base64 HMAC-SHA256>` of `<id>.<timestamp>.<body>` with WEBHOOK_SECRET."),
    ]
    event = {"$ref": _REF.format(name="Event")}

    def header(name: str, text: str) -> dict[str, Any]:
        return {"name": name, "in": "header", "required": True, "description": text, "schema": {"type": "string"}}

    return {
        "post": {
            "operationId": "jobEnded",
            "description": "Sent to a job's Webhook-Url once it ends, signed per the Standard Webhooks specification. "
            "Any 2xx answer delivers it; 410 stops further attempts; anything else, or no answer within 5 s, is "
            "retried with exponential backoff and jitter, up to WEBHOOK_MAX_ATTEMPTS. Redirects are not followed.",
            "parameters": [header(name, text) for name, text in signed],
            "requestBody": {"required": True, "content": {"application/json": {"schema": event}}},
            "responses": {
                "2XX": {"description": "Delivered."},
                "410": {"description": "Gone: no further attempt."},
            },
        }
    }


def _list_of(names: tuple[str, ...]) -> str:
    one = "|".join(re.escape(name) for name in names)
    return f"^(?:{one})(?:,(?:{one}))*$"


def _query(name: str, description: str, kind: str, **limits: Any) -> dict[str, Any]:
    schema = {"type": kind, **limits}
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _answer(shape: type[msgspec.Struct], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _REF.format(name=shape.__name__)}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _answer(Error, HTTP_CODES[status]) for status in statuses}
