"""GET /tasks/<id>/results: streamed JSON, NDJSON and CSV, ETags, 409 before the end; ?fields, ?explain, ?id_field."""

import csv
import dataclasses
import io
import json
import math

import msgspec
import pytest

from api import create_app
from jobs import keys
from model_store import ModelStore, artifacts
from training import scoring
from training.pipeline import schema

FORMATS = ["application/json", "application/x-ndjson", "text/csv"]


def post(client, body, query: str = "", content_type: str = "application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    response = client.post(f"/predict{query}", data=data, content_type=content_type)
    assert response.status_code == 202, response.get_data(as_text=True)
    return response.get_json()["task_id"]


def score_as_a_worker_would(app, pipeline, task_id: str) -> None:
    """Score every chunk with the real scoring functions and record it, as worker.tasks does (without Celery)."""
    jobs = app.extensions["glmq"].jobs
    job = jobs.get(task_id)
    for chunk in range(job.chunks):
        records = msgspec.json.decode(jobs.client.get(keys.payload(task_id, chunk)))
        results = scoring.score_records(
            pipeline, records, job.threshold, chunk * job.chunk_rows, job.strict, job.fields, job.explain
        )
        jobs.finish_chunk(task_id, chunk, len(records), msgspec.json.encode(results), scoring.failed_rows(results))


def download(client, task_id: str, accept: str, **headers: str):
    return client.get(f"/tasks/{task_id}/results", headers={"Accept": accept, **headers})


def parsed(response) -> list[dict]:
    kind = response.mimetype
    text = response.get_data(as_text=True)
    if kind == "application/json":
        return json.loads(text)
    if kind == "application/x-ndjson":
        assert text.endswith("\n")
        return [json.loads(line) for line in text.splitlines()]
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.fixture
def rows(real_rows) -> list[dict]:
    return [{"key": row["id"], **row["values"]} for row in real_rows["rows"]] + [{"x12": "abc"}]


def test_every_format_streams_every_row_in_order(app, client, approved, rows) -> None:
    task_id = post(client, rows * 40)  # 280 rows in 3 chunks of 100
    score_as_a_worker_would(app, approved, task_id)
    expected = client.get(f"/tasks/{task_id}").get_json()["results"]
    assert len(expected) == 280
    as_json = download(client, task_id, "application/json")
    assert as_json.status_code == 200 and as_json.mimetype == "application/json"
    assert parsed(as_json) == expected
    assert parsed(download(client, task_id, "application/x-ndjson")) == expected
    table = parsed(download(client, task_id, "text/csv"))
    assert [int(line["row"]) for line in table] == list(range(280))
    for line, item in zip(table, expected, strict=True):
        if "error" in item:
            assert (line["error_field"], line["error_message"]) == (item["error"]["field"], item["error"]["message"])
            assert line["phat"] == ""
        else:
            assert float(line["phat"]) == item["phat"]  # bit for bit: repr reads back as the same double
            assert int(line["business_outcome"]) == item["business_outcome"]
            assert float(line["x31_asia"]) == item["x31_asia"]


def test_csv_columns_follow_the_documented_order(app, client, approved, rows) -> None:
    task_id = post(client, rows, "?id_field=key&explain=true")
    score_as_a_worker_would(app, approved, task_id)
    header = download(client, task_id, "text/csv").get_data(as_text=True).splitlines()[0].split(",")
    variables = sorted(approved.named_steps["select"].columns)
    assert header == [
        "business_outcome", *(f"contrib_{name}" for name in variables), "error_field", "error_message", "id",
        "intercept", "phat", "row", *variables,
    ]  # fmt: skip


def test_an_etag_comes_with_each_format_and_if_none_match_answers_304(app, client, approved, rows) -> None:
    task_id = post(client, rows)
    score_as_a_worker_would(app, approved, task_id)
    tags = {kind: download(client, task_id, kind).headers["ETag"] for kind in FORMATS}
    assert len(set(tags.values())) == 3
    for kind, tag in tags.items():
        again = download(client, task_id, kind, **{"If-None-Match": tag})
        assert (again.status_code, again.get_data(), again.headers["ETag"]) == (304, b"", tag)
        assert download(client, task_id, kind, **{"If-None-Match": '"other"'}).status_code == 200
    assert download(client, task_id, "text/csv", **{"If-None-Match": tags["application/json"]}).status_code == 200


def test_an_unfinished_job_is_409_with_its_status_url(client) -> None:
    task_id = post(client, {"x5": "monday"})
    response = download(client, task_id, "text/csv")
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "task_unfinished"
    assert error["details"] == {"task_id": task_id, "status": "queued", "status_url": f"/tasks/{task_id}"}


def test_a_failed_job_is_409_but_a_cancelled_one_streams_a_cancelled_row_for_each_row(app, client) -> None:
    failed, cancelled = post(client, {"x5": "monday"}), post(client, [{"x5": "monday"}] * 3)
    app.extensions["glmq"].jobs.fail(failed, "chunk 0 could not be scored: ValueError")
    assert download(client, failed, "text/csv").get_json()["error"]["code"] == "task_failed"
    client.delete(f"/tasks/{cancelled}")
    for kind in FORMATS:
        response = download(client, cancelled, kind)
        assert response.status_code == 200, response.get_data(as_text=True)
        got = parsed(response)
        assert [int(row["row"]) for row in got] == [0, 1, 2]
        if kind == "text/csv":
            assert {(row["error_field"], row["phat"]) for row in got} == {("", "")}
            assert {row["error_message"] for row in got} == {"The job was cancelled before this row was scored."}
        else:
            assert got == client.get(f"/tasks/{cancelled}").get_json()["results"]


def test_no_acceptable_format_is_406_and_no_accept_is_json(app, client, approved) -> None:
    task_id = post(client, {"x5": "monday"})
    score_as_a_worker_would(app, approved, task_id)
    assert download(client, task_id, "image/png").status_code == 406
    assert client.get(f"/tasks/{task_id}/results").mimetype == "application/json"
    assert download(client, task_id, "text/*").mimetype == "text/csv"
    assert client.get(f"/tasks/{task_id}/results?limit=5").get_json()["error"]["code"] == "unknown_parameter"
    assert client.get(f"/tasks/{'0' * 32}/results").status_code == 404


def test_results_that_expired_are_404(app, client, approved) -> None:
    task_id = post(client, {"x5": "monday"})
    score_as_a_worker_would(app, approved, task_id)
    app.extensions["glmq"].jobs.client.delete(keys.result(task_id, 0))
    assert download(client, task_id, "text/csv").get_json()["error"]["code"] == "task_not_found"


def test_ids_are_echoed_in_every_row_error_rows_included(app, client, approved, rows) -> None:
    task_id = post(client, rows, "?id_field=key")
    score_as_a_worker_would(app, approved, task_id)
    results = client.get(f"/tasks/{task_id}").get_json()["results"]
    assert [item["id"] for item in results] == [row.get("key") for row in rows]
    assert results[-1]["id"] is None and "error" in results[-1]
    assert list(results[0]) == sorted(results[0])  # keys stay sorted


def test_fields_keep_only_the_named_keys_and_the_row_and_id(app, client, approved, rows) -> None:
    task_id = post(client, rows, "?id_field=key&fields=phat,business_outcome")
    score_as_a_worker_would(app, approved, task_id)
    results = client.get(f"/tasks/{task_id}").get_json()["results"]
    assert [list(item) for item in results[:-1]] == [["business_outcome", "id", "phat", "row"]] * (len(rows) - 1)
    assert list(results[-1]) == ["error", "id", "row"]
    header = download(client, task_id, "text/csv").get_data(as_text=True).splitlines()[0]
    assert header == "business_outcome,error_field,error_message,id,phat,row"


@pytest.mark.parametrize(
    ("query", "code"),
    [("fields=phat,nope", "invalid_fields"), ("fields=", "invalid_fields"), ("fields=phat,,row", "invalid_fields"),
     ("explain=maybe", "invalid_explain"), ("id_field=", "invalid_id_field")],
)  # fmt: skip
def test_bad_shapes_are_422(client, query, code) -> None:
    response = client.post(f"/predict?{query}", json={"x5": "monday"})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == code


def test_explanations_sum_to_the_logit_of_phat(app, client, approved, rows) -> None:
    task_id = post(client, rows, "?explain=true&fields=phat,contributions,intercept")
    score_as_a_worker_would(app, approved, task_id)
    results = client.get(f"/tasks/{task_id}").get_json()["results"]
    variables = approved.named_steps["select"].columns
    scored = [item for item in results if "error" not in item]
    assert len(scored) == len(rows) - 1
    for item in scored:
        assert sorted(item["contributions"]) == sorted(variables)
        logit = math.log(item["phat"] / (1 - item["phat"]))
        assert abs(item["intercept"] + math.fsum(item["contributions"].values()) - logit) < 1e-9
    table = parsed(download(client, task_id, "text/csv"))
    for line, item in zip(table, results, strict=True):
        if "error" not in item:
            assert {name: float(line[f"contrib_{name}"]) for name in variables} == item["contributions"]


def test_a_model_without_linear_coefficients_answers_explain_unsupported(settings, approved, tmp_path) -> None:
    store = ModelStore(tmp_path)
    plain = {**schema(approved), "linear": False}  # as a store records a model with no coefficients
    store.promote("plain", artifacts.save(store, "plain", approved, schema=plain, threshold=0.5, metrics={},
                                          data_fingerprint={}))  # fmt: skip
    app = create_app(dataclasses.replace(settings, model_store_dir=tmp_path, model_name="plain"))
    response = app.test_client().post("/predict?explain=true", json={"x5": "monday"})
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "explain_unsupported"
    app.extensions["glmq"].redis.close()
    app.extensions["glmq"].waiters.client.close()
