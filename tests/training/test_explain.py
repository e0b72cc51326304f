"""Exact explanations (training.explain) and the result shape options of scoring: ids, fields, explain."""

import math

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from training.explain import LinearTerms
from training.pipeline import input_fields, is_linear, model_variables
from training.scoring import ID_KEY, score_batches, score_records


def test_the_terms_are_the_models_coefficients_and_intercept(approved, reference) -> None:
    terms = LinearTerms.of(approved)
    assert terms is not None and is_linear(approved)
    assert terms.coefficients == {name: reference["coefficients"][name] for name in sorted(model_variables(approved))}
    assert terms.intercept == float(reference["intercept"])


def test_a_model_without_coefficients_has_no_terms(approved) -> None:
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((2, len(model_variables(approved)))), [0, 1])
    prior = Pipeline([*approved.steps[:-1], ("model", dummy)])
    assert LinearTerms.of(prior) is None and not is_linear(prior)
    assert score_records(prior, [{"x5": "monday"}], 0.5)[0]["phat"] == 0.5
    with pytest.raises(ValueError, match="no linear coefficients"):
        score_records(prior, [{"x5": "monday"}], 0.5, explain=True)


def test_contributions_sum_to_the_logit_of_every_real_row(approved, real_rows) -> None:
    rows = [row["values"] for row in real_rows["rows"]]
    for item in score_records(approved, rows, 0.5, explain=True):
        logit = math.log(item["phat"] / (1 - item["phat"]))
        assert item["intercept"] + math.fsum(item["contributions"].values()) == pytest.approx(logit, abs=1e-9)
        terms = LinearTerms.of(approved)
        assert all(item["contributions"][name] == c * item[name] for name, c in terms.coefficients.items())


def test_each_job_of_a_micro_batch_keeps_its_own_shape(approved, real_rows) -> None:
    good = real_rows["rows"][0]["values"]
    plain, slim, explained = score_batches(
        approved, [[good], [{**good, ID_KEY: "a"}, {ID_KEY: None}], [good]], [0.5] * 3,
        fields=[(), ("phat",), ()], explain=[False, False, True],
    )  # fmt: skip
    assert "contributions" not in plain[0] and ID_KEY not in plain[0] and "id" not in plain[0]
    assert slim == [{"id": "a", "phat": plain[0]["phat"], "row": 0}, {"error": slim[1]["error"], "id": None, "row": 1}]
    assert explained[0] == {**plain[0], **LinearTerms.of(approved).explain(plain[0])}
    assert list(explained[0]) == sorted(explained[0])


def test_the_id_is_not_an_unknown_field_under_strict(approved, real_rows) -> None:
    known = {name: real_rows["rows"][0]["values"][name] for name in input_fields(approved)}
    (item,) = score_records(approved, [{**known, ID_KEY: 3}], 0.5, strict=True)
    assert "error" not in item and item["id"] == 3
