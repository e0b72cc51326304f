"""Schemathesis over the generated OpenAPI description: no input may cause a server error."""

import itertools
from collections import Counter

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.generation import GenerationMode

from api import create_app


def test_the_description_lists_every_route(client) -> None:
    spec = client.get("/openapi.json").get_json()
    assert set(spec["paths"]) == {"/predict", "/tasks/{task_id}", "/health", "/ready", "/metrics"}
    body_schema = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["oneOf"][1]["maxItems"] == 1_000
    assert "x12" in spec["components"]["schemas"]["Record"]["properties"]


def test_no_generated_request_causes_a_server_error(settings) -> None:
    schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(settings))
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    for operation, mode in itertools.product(operations, GenerationMode):
        takes_nothing = operation.path in ("/health", "/ready", "/metrics") or operation.method == "delete"
        if mode is GenerationMode.NEGATIVE and takes_nothing:
            continue  # nothing, or only a free-form id: no negative case exists

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case) -> None:
            response = case.call()
            statuses[response.status_code] += 1
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
            if response.status_code >= 400:
                assert response.json()["error"]["code"]

        call()
    print("schemathesis statuses:", dict(sorted(statuses.items())))
    assert statuses[202] > 0 and sum(statuses.values()) >= 200
    assert any(400 <= status < 500 and status != 404 for status in statuses)
