"""The OpenAPI document is generated from the answer types; the API keeps to it, and /docs shows it offline."""

import itertools
import json
from collections import Counter
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hypothesis_settings
from schemathesis.core.failures import Failure
from schemathesis.generation import GenerationMode
from swagger_ui_bundle import swagger_ui_path

from api import create_app
from api.schemas import RESPONSES
from tests.api.test_routes import RECORD, post

REF = "#/components/schemas/{name}"


def test_the_description_lists_every_route_and_the_limits(client) -> None:
    spec = client.get("/openapi.json").get_json()
    assert set(spec["paths"]) == {
        "/predict",
        "/tasks/{task_id}",
        "/tasks/{task_id}/results",
        "/tasks/{task_id}/events",
        "/models",
        "/health",
        "/ready",
        "/metrics",
    }
    body = spec["paths"]["/predict"]["post"]["requestBody"]
    batch = next(option for option in body["content"]["application/json"]["schema"]["anyOf"] if "items" in option)
    assert (batch["minItems"], batch["maxItems"]) == (1, 1_000)
    assert body["x-max-body-bytes"] == 1_000_000
    record = spec["components"]["schemas"]["Record"]
    glm_fields = {"x5", "x12", "x31", "x44", "x53", "x56", "x58", "x62", "x81", "x91"}
    assert set(record["properties"]) == glm_fields
    # Each served model's input fields, for ?model=<name>.
    (served,) = body["x-models"].items()
    assert served[0] == "glm26" and set(served[1]["input_fields"]) == glm_fields
    assert served[1]["record"] == {"$ref": REF.format(name="Record_glm26")}
    assert set(spec["components"]["schemas"]["Record_glm26"]["properties"]) == glm_fields
    parameters = {p["name"] for p in spec["paths"]["/predict"]["post"]["parameters"]}
    assert parameters == {
        "threshold", "model", "version", "strict", "wait", "Webhook-Url", "id_field", "fields", "explain",
        "Idempotency-Key",
    }  # fmt: skip
    assert set(body["content"]) == {"application/json", "text/csv", "application/x-ndjson"}
    results = spec["paths"]["/tasks/{task_id}/results"]["get"]["responses"]
    assert set(results["200"]["content"]) == {"application/json", "text/csv", "application/x-ndjson"}
    assert {"304", "406", "409"} <= set(results)
    events = spec["paths"]["/tasks/{task_id}/events"]["get"]["responses"]["200"]
    assert set(events["content"]) == {"text/event-stream"}
    assert events["x-events"]["progress"] == {"$ref": REF.format(name="Progress")}


def test_every_json_answer_is_a_component_generated_from_the_answer_types(client) -> None:
    spec = client.get("/openapi.json").get_json()
    _, generated = msgspec.json.schema_components(RESPONSES, ref_template=REF)
    generated = json.loads(json.dumps(generated))  # as the document carries it: plain JSON
    answers = [
        (f"{method} {path} {status}", answer["content"])
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for status, answer in operation["responses"].items()
        if status not in ("204", "304")  # no body
    ]
    assert len(answers) >= 25
    for where, content in answers:
        if "text/plain" in content or "text/event-stream" in content:  # /metrics, and the events of a task
            continue
        schema = content["application/json"]["schema"]
        ref = schema["items"]["$ref"] if schema.get("type") == "array" else schema["$ref"]  # /results: rows
        name = ref.removeprefix("#/components/schemas/")
        assert ref == REF.format(name=name) and spec["components"]["schemas"][name] == generated[name], where
    assert {
        "Accepted",
        "Task",
        "Page",
        "ModelRef",
        "ResultRow",
        "Error",
        "ErrorBody",
        "Health",
        "Ready",
        "Models",
        "FieldWarning",
        "Progress",
    } <= set(spec["components"]["schemas"])


def test_no_generated_request_causes_a_server_error_or_an_answer_off_the_document(settings, redis_db) -> None:
    # No worker runs here, so a request that asks to wait would hold its full wait: let none wait.
    schema = schemathesis.openapi.from_wsgi("/openapi.json", create_app(replace(settings, max_waiters=0)))
    # A batch over maxItems is refused with 413 too_many_rows, as documented: a rejection, which the
    # check's default list of statuses leaves out.
    checks = schema.config.checks
    rejecting = checks.negative_data_rejection
    checks.negative_data_rejection = type(rejecting)(expected_statuses=[*rejecting.expected_statuses, 413])
    statuses: Counter[int] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 9
    for operation, mode in itertools.product(operations, GenerationMode):
        takes_nothing = (
            operation.path in ("/health", "/ready", "/metrics", "/models", "/tasks/{task_id}/results")
            or operation.method == "delete"
        )
        if mode is GenerationMode.NEGATIVE and takes_nothing:
            continue  # nothing, or only a free-form id: no negative case exists

        @given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
        def call(case) -> None:
            # A CSV or NDJSON body is described as text, and a random text is no valid file: only a JSON body is
            # expected to be accepted. (call runs within its loop turn, so `mode` is this turn's.)
            assume(mode is GenerationMode.NEGATIVE or case.media_type in (None, "application/json"))  # noqa: B023
            # Every default check: no 5xx, documented status and content type, body and headers as the
            # document says, invalid input refused and valid input accepted. Whether a Webhook-Url is accepted
            # depends on DNS and the secret, which no schema can say: tests/api/test_webhooks.py tries it.
            if case.headers:
                case.headers.pop("Webhook-Url", None)
            # Each case is a submission of its own: a key generated again for another body would be refused
            # by design (422 idempotency_key_reused), which the check takes for valid data refused.
            if claims := redis_db.keys("glmq:idem:*"):
                redis_db.delete(*claims)
            response = case.call_and_validate()
            statuses[response.status_code] += 1
            if response.status_code >= 400:
                assert response.json()["error"]["code"]

        call()
    print("schemathesis statuses:", dict(sorted(statuses.items())))
    assert statuses[202] > 0 and sum(statuses.values()) >= 200
    assert any(400 <= status < 500 and status != 404 for status in statuses)


@pytest.fixture
def described(app):
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def test_every_kind_of_answer_conforms_to_the_document(app, client, described) -> None:
    accepted = post(client, [RECORD] * 3)
    described["/predict"]["POST"].validate_response(accepted)
    task_url = accepted.headers["Location"]
    task_id = accepted.get_json()["task_id"]
    status = described["/tasks/{task_id}"]["GET"]
    status.validate_response(client.get(task_url))

    scored = {"business_outcome": 1, "phat": 0.8, "row": 0, "x12": 0.25, "x5_monday": 0.0}
    failed_row = {"error": {"field": "x12", "message": "cannot parse 'abc' as a number"}, "row": 1}
    results = json.dumps([scored, failed_row, dict(scored, row=2, business_outcome=0, phat=0.1)]).encode()
    app.extensions["glmq"].jobs.finish_chunk(task_id, 0, 3, results)
    everything = client.get(task_url)
    assert everything.get_json()["results"][1] == failed_row
    status.validate_response(everything)
    page = client.get(f"{task_url}?limit=2")
    assert page.get_json()["page"]["next"]
    status.validate_response(page)
    status.validate_response(client.get(f"{task_url}?offset=9"))

    cancelled_id = post(client, RECORD).get_json()["task_id"]
    described["/tasks/{task_id}"]["DELETE"].validate_response(client.delete(f"/tasks/{cancelled_id}"))
    status.validate_response(client.get(f"/tasks/{cancelled_id}"))  # its row: the error code `cancelled`
    events = described["/tasks/{task_id}/events"]["GET"]
    events.validate_response(client.get(f"/tasks/{cancelled_id}/events"))
    replay = post(client, RECORD, headers={"Idempotency-Key": "k"}) and post(
        client, RECORD, headers={"Idempotency-Key": "k"}
    )
    assert replay.headers["Idempotent-Replayed"] == "true"
    described["/predict"]["POST"].validate_response(replay)
    described["/tasks/{task_id}"]["DELETE"].validate_response(client.delete(task_url))  # 409
    status.validate_response(client.get(f"/tasks/{'0' * 32}"))  # 404
    described["/models"]["GET"].validate_response(client.get("/models"))
    warned = post(client, [dict(RECORD, x121="$1")], query="?strict=true")
    described["/predict"]["POST"].validate_response(warned)
    status.validate_response(client.get(warned.headers["Location"]))
    described["/health"]["GET"].validate_response(client.get("/health"))
    described["/ready"]["GET"].validate_response(client.get("/ready"))


def test_an_answer_off_the_document_is_caught(client, described) -> None:
    accepted = post(client, RECORD)
    body = accepted.get_json()
    accepted.set_data(json.dumps(dict(body, rows="one")))
    with pytest.raises(Failure, match="is not of type"):
        described["/predict"]["POST"].validate_response(accepted)


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_docs_show_swagger_ui_with_every_asset_served_here(client) -> None:
    page = client.get("/docs")
    assert (page.status_code, page.mimetype) == (200, "text/html")
    html = page.get_data(as_text=True)
    assert "/openapi.json" in html and "SwaggerUIBundle" in html
    assert "http://" not in html and "https://" not in html  # nothing is fetched from another host
    parser = _Assets()
    parser.feed(html)
    scripts_and_styles = [url for url in parser.urls if url.endswith((".js", ".css"))]
    assert len(scripts_and_styles) >= 2
    for url in parser.urls:
        assert not urlsplit(url).netloc and url.startswith("/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.get_data() == (Path(swagger_ui_path) / Path(url).name).read_bytes(), url
        asset.close()
