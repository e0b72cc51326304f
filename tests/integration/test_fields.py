"""Wrong fields through the real stack: warned of, row errors in their place, never a silent score."""

import pytest
import requests

from tests.integration.test_service import in_process

pytestmark = pytest.mark.integration
FIELDS = ["x12", "x31", "x44", "x5", "x53", "x56", "x58", "x62", "x81", "x91"]


def test_a_misspelled_field_is_warned_of_and_a_row_without_model_fields_is_an_error(stack, approved, real_rows) -> None:
    good = real_rows["rows"][0]["values"]
    response = stack.submit([{"x121": "$1,000.00", "X5": "monday"}, good, {"foo": 1}])
    assert response.status_code == 202
    body = stack.wait(response.json()["task_id"])
    assert body["status"] == "succeeded"
    (warning,) = body["warnings"]
    assert warning == response.json()["warnings"][0]
    assert warning["code"] == "unknown_fields" and warning["fields"][:3] == ["x121", "X5", "x0"]
    for row in (0, 2):
        error = body["results"][row]["error"]
        assert (body["results"][row]["row"], error["code"], sorted(error["fields"])) == (row, "no_model_fields", FIELDS)
    assert body["results"][1] == in_process(approved, [good])[0] | {"row": 1}


@pytest.mark.parametrize("rows", [3, 4_500])  # a micro-batched job, and a job in chunks
def test_strict_makes_row_errors_of_unknown_fields(stack, approved, real_rows, rows) -> None:
    good = {name: real_rows["rows"][0]["values"][name] for name in FIELDS}
    records = [good] * rows
    records[1] = dict(good, x121="$1")
    body = stack.score(records, query="?strict=true")
    assert body["status"] == "succeeded" and body["warnings"][0]["fields"] == ["x121"]
    assert body["results"][1]["row"] == 1
    assert body["results"][1]["error"]["code"] == "unknown_field" and body["results"][1]["error"]["field"] == "x121"
    expected = in_process(approved, [good])[0]
    scored = [r for i, r in enumerate(body["results"]) if i != 1]
    assert [r["row"] for r in scored] == [i for i in range(rows) if i != 1]
    # phat agrees to a few ulp across batch sizes (BLAS sums in another order): compare it apart.
    assert all(abs(r["phat"] - expected["phat"]) < 1e-12 for r in scored)
    assert all(r | {"row": 0, "phat": 0} == expected | {"phat": 0} for r in scored)


def test_a_pinned_version_scores_and_names_it_and_a_misspelled_parameter_is_refused(stack, real_rows) -> None:
    good = real_rows["rows"][0]["values"]
    body = stack.score(good, query="?version=1")
    assert body["model"] == {"name": "glm26", "version": 1} and "phat" in body["results"][0]
    assert stack.submit(good, query="?version=9").status_code == 404
    refused = stack.submit(good, query="?modle=glm27")
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "unknown_parameter")
    models = requests.get(f"{stack.url}/models", timeout=30).json()["models"]
    listed = [(m["name"], m["serving"], [v["version"] for v in m["versions"]]) for m in models]
    assert ("glm26", 1, [1]) in listed  # other tests of the session may add models of their own
