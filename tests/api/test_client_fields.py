"""The fields the bundled client reads are fields of the answers that /openapi.json describes.

The schemas are found through the paths (the 202 of POST /predict, the 200 of GET /tasks/{task_id}, the
422 of POST /predict) and their $refs, so the test does not depend on what the components are called.
"""

from __future__ import annotations

from typing import Any

import pytest

from client.fields import ACCEPTED, ERROR, ITEMS, PROGRESS, TASK, FieldPath

Schema = dict[str, Any]


def resolve(spec: Schema, schema: Schema) -> Schema:
    while "$ref" in schema:
        node: Any = spec
        for step in schema["$ref"].removeprefix("#/").split("/"):
            node = node[step.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def options(spec: Schema, schema: Schema) -> list[Schema]:
    """The schemas a value may match: one, or each branch of anyOf, oneOf and allOf (e.g. `T | None`)."""
    schema = resolve(spec, schema)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return [option for branch in schema[combinator] for option in options(spec, branch)]
    return [schema]


def free_form(schema: Schema) -> bool:
    """An object or array whose content the document leaves open, such as a result row's model variables."""
    if schema.get("type") == "array":
        return "items" not in schema
    return (
        schema.get("type", "object") == "object"
        and "properties" not in schema
        and schema.get("additionalProperties") is not False
    )


def described(spec: Schema, schema: Schema, path: FieldPath) -> bool:
    """Whether `path` leads to a field of `schema`; below the top, a free-form part admits any path."""
    if not path:
        return True
    step, rest = path[0], path[1:]
    for option in options(spec, schema):
        if step == ITEMS and "items" in option and described(spec, option["items"], rest):
            return True
        if step in option.get("properties", {}) and described(spec, option["properties"][step], rest):
            return True
        if free_form(option):
            return True
    return False


def response_schema(spec: Schema, path: str, method: str, status: str) -> Schema:
    response = resolve(spec, spec["paths"][path][method]["responses"][status])
    return resolve(spec, response["content"]["application/json"]["schema"])


@pytest.mark.parametrize(
    ("path", "method", "status", "fields"),
    [
        ("/predict", "post", "202", ACCEPTED),
        ("/tasks/{task_id}", "get", "200", TASK),
        ("/tasks/{task_id}", "delete", "200", TASK),
        ("/predict", "post", "422", ERROR),
        ("/tasks/{task_id}", "get", "404", ERROR),
    ],
)
def test_every_field_the_client_reads_is_in_the_schema(client, path, method, status, fields) -> None:
    spec = client.get("/openapi.json").get_json()
    schema = response_schema(spec, path, method, status)
    top = {name for option in options(spec, schema) for name in option.get("properties", {})}
    assert {field[0] for field in fields} <= top  # the top level is always checked strictly
    assert sorted(field for field in fields if not described(spec, schema, field)) == []


@pytest.mark.parametrize(("event", "fields"), [("progress", PROGRESS), ("succeeded", TASK), ("failed", TASK)])
def test_every_field_the_client_reads_of_an_event_is_in_the_schema(client, event, fields) -> None:
    spec = client.get("/openapi.json").get_json()
    stream = spec["paths"]["/tasks/{task_id}/events"]["get"]["responses"]["200"]
    schema = resolve(spec, stream["x-events"][event])
    assert {field[0] for field in fields} <= set(schema["properties"])
    assert sorted(field for field in fields if not described(spec, schema, field)) == []


def test_a_field_missing_from_the_schema_is_noticed(client) -> None:
    spec = client.get("/openapi.json").get_json()
    accepted = response_schema(spec, "/predict", "post", "202")
    assert not described(spec, accepted, ("task_identifier",))
    assert not described(spec, accepted, ("model", "label"))
    assert described(spec, accepted, ("model", "name"))
