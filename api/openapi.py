"""The OpenAPI description, built from the code's own limits, codes and model schema."""

from __future__ import annotations

from typing import Any

from api.errors import HTTP_CODES
from model_store import NAME_PATTERN
from settings import Settings

_RAW_VALUE = {"type": ["string", "number", "integer", "boolean", "null"]}
_HEALTH = {"type": "object", "properties": {"status": {"const": "ok"}}, "required": ["status"]}
_TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
_READY = {
    "type": "object",
    "properties": {"status": {"const": "ready"}, "model": {"$ref": "#/components/schemas/Model"}},
    "required": ["status", "model"],
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def build_spec(settings: Settings, input_fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for this deployment."""
    record = {
        "type": "object",
        "description": "One raw record: fields as the client has them (money, percents, nulls...).",
        "properties": {name: _RAW_VALUE for name in input_fields},
        "additionalProperties": True,
    }
    security = [{"bearer": []}] if settings.api_keys else []
    return {
        "openapi": "3.1.0",
        "info": {"title": "glm-queue", "version": "1", "description": "Queue-based scoring of tabular models."},
        "paths": {
            "/predict": {
                "post": {
                    "operationId": "predict",
                    "security": security,
                    "parameters": [
                        {
                            "name": "threshold",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "number", "minimum": 0, "maximum": 1},
                        },
                        {
                            "name": "model",
                            "in": "query",
                            "required": False,
                            "description": f"The model to score with (default: {settings.model_name}).",
                            "schema": {"type": "string", "pattern": f"^{NAME_PATTERN}$"},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Record"},
                                        {
                                            "type": "array",
                                            "minItems": 1,
                                            "maxItems": settings.max_batch_rows,
                                            "items": {"$ref": "#/components/schemas/Record"},
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted; poll the Location.",
                            "headers": {"Location": {"schema": {"type": "string"}}},
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
                        },
                        **{str(status): _error(HTTP_CODES[status]) for status in (400, 401, 413, 415, 422, 429)},
                        "404": _error("model_not_found"),
                        "503": _error("redis_unavailable or model_unavailable"),
                    },
                }
            },
            "/tasks/{task_id}": {
                "get": {
                    "operationId": "task",
                    "security": security,
                    "parameters": [
                        _TASK_ID,
                        {
                            "name": "offset",
                            "in": "query",
                            "required": False,
                            "description": "First row of the page of results (default 0).",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "description": "Most rows in the page of results (default: every remaining row).",
                            "schema": {"type": "integer", "minimum": 1},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "The task's status, with results once it succeeded.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}},
                        },
                        "401": _error("unauthorized"),
                        "404": _error("task_not_found"),
                        "422": _error("invalid_page"),
                        "429": _error("rate_limited"),
                        "503": _error("redis_unavailable"),
                    },
                },
                "delete": {
                    "operationId": "cancel",
                    "security": security,
                    "parameters": [_TASK_ID],
                    "responses": {
                        "200": {
                            "description": "Cancelled: the task is failed with error code job_cancelled.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Task"}}},
                        },
                        "401": _error("unauthorized"),
                        "404": _error("task_not_found"),
                        "409": _error("task_finished"),
                        "503": _error("redis_unavailable"),
                    },
                },
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "responses": {"200": {"description": "Up.", "content": {"application/json": {"schema": _HEALTH}}}},
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "Gauges in the Prometheus text format: queued and delivered chunks, "
                            "unfinished jobs, the served model.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/ready": {
                "get": {
                    "operationId": "ready",
                    "responses": {
                        "200": {
                            "description": "Redis answers and a model is served: a job would be accepted.",
                            "content": {"application/json": {"schema": _READY}},
                        },
                        "503": _error("redis_unavailable or model_unavailable"),
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Record": record,
                "Model": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "version": {"type": "integer"}},
                    "required": ["name", "version"],
                },
                "Accepted": {
                    "type": "object",
                    "required": ["task_id", "status", "rows", "model", "threshold", "status_url"],
                    "properties": {
                        "task_id": {"type": "string"},
                        "status": {"const": "queued"},
                        "rows": {"type": "integer", "minimum": 1},
                        "model": {"$ref": "#/components/schemas/Model"},
                        "threshold": {"type": "number"},
                        "status_url": {"type": "string"},
                    },
                },
                "Task": {
                    "type": "object",
                    "required": ["task_id", "status", "rows", "rows_done", "model", "threshold", "submitted_at"],
                    "properties": {
                        "task_id": {"type": "string"},
                        "status": {"enum": ["queued", "running", "succeeded", "failed"]},
                        "rows": {"type": "integer"},
                        "rows_done": {"type": "integer"},
                        "model": {"$ref": "#/components/schemas/Model"},
                        "threshold": {"type": "number"},
                        "submitted_at": {"type": "string"},
                        "finished_at": {"type": "string"},
                        "results": {"type": "array", "items": {"type": "object"}},
                        "page": {
                            "type": "object",
                            "description": "Present when offset or limit was given; next is the following page's URL.",
                            "properties": {
                                "offset": {"type": "integer"},
                                "limit": {"type": ["integer", "null"]},
                                "next": {"type": ["string", "null"]},
                            },
                        },
                        "error": {"type": "object"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string", "pattern": "^[a-z_]+$"},
                                "message": {"type": "string"},
                                "details": {},
                            },
                        }
                    },
                },
            },
        },
    }
