import math

import numpy as np

from training.pipeline import input_fields, model_variables
from training.scoring import score_batches, score_records


def test_reproduces_the_verified_case(approved, real_rows) -> None:
    row = next(r for r in real_rows["rows"] if r["id"] == "train_split_row0")
    phat = approved.predict_proba([row["values"]])[0, 1]
    assert abs(phat - real_rows["verified_case"]["phat"]) < 1e-6


def test_matches_the_glm_equation_written_out(approved, reference, real_rows) -> None:
    stats = reference["numeric_statistics_32k_split"]
    coefs = reference["coefficients"]
    row = next(r for r in real_rows["rows"] if r["id"] == "train_split_row0")["values"]
    z = 0.0
    for variable, coef in coefs.items():
        if variable in stats:
            value = float(row[variable].replace("$", "").replace("%", ""))
            z += coef * (value - stats[variable]["scaler_mean"]) / stats[variable]["scaler_scale"]
        else:
            column, level = variable.split("_", 1)
            z += coef * (row[column] == level)
    assert (
        approved.predict_proba([row])[0, 1] == 1 / (1 + math.exp(-z))
        or abs(approved.predict_proba([row])[0, 1] - 1 / (1 + math.exp(-z))) < 1e-12
    )


def test_reads_only_the_fields_its_variables_need(approved, reference) -> None:
    assert model_variables(approved) == reference["variables_model_order"]
    assert input_fields(approved) == ["x12", "x31", "x44", "x5", "x53", "x56", "x58", "x62", "x81", "x91"]


def test_a_row_scores_the_same_alone_as_inside_ten_thousand(approved, real_rows) -> None:
    records = [r["values"] for r in real_rows["rows"]]
    batch = [dict(records[i % len(records)], x12=f"${i:,}.25 ") for i in range(10_000)]
    together = score_records(approved, batch, 0.712)
    for i in (0, 1, 4, 5_003, 9_999):
        alone = score_records(approved, [batch[i]], 0.712, first_row=i)[0]
        # Every model input is bit-identical; phat may differ in the last bit, since BLAS
        # sums a 1-row and a 10,000-row product in different orders.
        assert {k: v for k, v in alone.items() if k != "phat"} == {k: v for k, v in together[i].items() if k != "phat"}
        assert abs(alone["phat"] - together[i]["phat"]) <= 4 * np.finfo(float).eps


def test_rows_carry_outcome_phat_and_every_variable_sorted(approved, reference, real_rows) -> None:
    records = [r["values"] for r in real_rows["rows"]]
    results = score_records(approved, records, 0.712)
    expected_keys = sorted(["business_outcome", "phat", "row", *reference["variables_model_order"]])
    phats = approved.predict_proba(records)[:, 1]
    for i, result in enumerate(results):
        assert list(result) == expected_keys
        assert result["row"] == i
        assert result["phat"] == phats[i]
        assert result["business_outcome"] == int(phats[i] >= 0.712)
    verified = results[4]
    assert verified["business_outcome"] == 1
    assert verified["x5_sunday"] == 1.0 and verified["x81_November"] == 1.0 and verified["x31_asia"] == 1.0


def test_a_bad_field_is_reported_and_the_rest_still_scored(approved, real_rows) -> None:
    records = [dict(r["values"]) for r in real_rows["rows"]]
    records[2]["x12"] = "abc"
    results = score_records(approved, records, 0.712, first_row=100)
    assert results[2] == {"error": {"field": "x12", "message": "cannot parse 'abc' as a number"}, "row": 102}
    good = [i for i in range(len(records)) if i != 2]
    assert [results[i]["row"] for i in good] == [100 + i for i in good]
    np.testing.assert_array_equal(
        [results[i]["phat"] for i in good], approved.predict_proba([records[i] for i in good])[:, 1]
    )


def test_threshold_decides_the_outcome_at_equality(approved, real_rows) -> None:
    record = next(r for r in real_rows["rows"] if r["id"] == "train_split_row0")["values"]
    phat = approved.predict_proba([record])[0, 1]
    assert score_records(approved, [record], phat)[0]["business_outcome"] == 1
    assert score_records(approved, [record], np.nextafter(phat, 1))[0]["business_outcome"] == 0


def test_jobs_scored_together_keep_their_own_thresholds_rows_and_errors(approved, real_rows) -> None:
    records = [r["values"] for r in real_rows["rows"]]
    first, second = records[:3], [*records[3:5], {"x12": "not money"}]
    together = score_batches(approved, [first, second], [0.0, 1.0], [10, 0])
    for batch, alone in zip(together, (score_records(approved, first, 0.0, 10), score_records(approved, second, 1.0))):
        assert [{k: v for k, v in row.items() if k != "phat"} for row in batch] == [
            {k: v for k, v in row.items() if k != "phat"} for row in alone
        ]
        # phat may differ in the last bit only: BLAS sums products of different heights in different orders.
        assert all(abs(a.get("phat", 0) - b.get("phat", 0)) <= 4 * np.finfo(float).eps for a, b in zip(batch, alone))
    assert [row["business_outcome"] for row in together[0]] == [1, 1, 1]
    assert [row["business_outcome"] for row in together[1][:2]] == [0, 0]
    assert together[1][2] == {"error": together[1][2]["error"], "row": 2} and together[1][2]["error"]["field"] == "x12"
