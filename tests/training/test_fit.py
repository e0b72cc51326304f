import re

import numpy as np
import pandas as pd
import pytest

from training.fit import FitResult, fit_csv, infer_schema
from training.scoring import score_records
from training.synth import synthesize

TOLERANCE_SE = 3.0


@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("data") / "synthetic.csv"
    synthesize(40_000, seed=26).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fitted(synthetic_csv) -> FitResult:
    return fit_csv(synthetic_csv)


def test_synthetic_data_is_deterministic_and_in_client_formats() -> None:
    first, second = synthesize(500, seed=3), synthesize(500, seed=3)
    pd.testing.assert_frame_equal(first, second)
    assert not first.equals(synthesize(500, seed=4))
    x12 = first["x12"].dropna()
    assert x12.str.fullmatch(r"\$-?[\d,]+\.\d\d ?|\(\$[\d,]+\.\d\d\)").all()
    assert x12.str.startswith("(").any() and x12.str.endswith(" ").any()
    assert first["x63"].dropna().str.fullmatch(r"-?\d+\.\d\d%?").all()
    missing = first.drop(columns="y").isna().to_numpy().mean()
    assert 0.01 < missing < 0.04
    assert set(first["y"]) == {0, 1}


def test_schema_inference_finds_the_four_categorical_columns() -> None:
    raw = synthesize(300, seed=1).drop(columns="y").astype(object).where(lambda f: f.notna(), "")
    numeric, categorical = infer_schema(raw.astype(str))
    assert categorical == ["x5", "x31", "x81", "x82"]
    assert "x12" in numeric and "x63" in numeric and len(numeric) == 96


def test_split_sizes_follow_the_procedure(fitted: FitResult) -> None:
    assert fitted.metrics["rows"] == {"train": 32_000, "val": 4_000, "test": 4_000}


def test_selects_the_approved_variables(fitted: FitResult, reference) -> None:
    assert set(fitted.metrics["coefficients"]) == set(reference["variables_model_order"])


def test_recovers_every_coefficient_within_three_standard_errors(fitted: FitResult, reference) -> None:
    z = {
        name: abs(coef - reference["coefficients"][name]) / fitted.metrics["std_err"][name]
        for name, coef in fitted.metrics["coefficients"].items()
    }
    worst = max(z, key=z.get)
    assert z[worst] < TOLERANCE_SE, f"{worst} is {z[worst]:.2f} standard errors off"


def test_reports_auc_near_the_approved_model(fitted: FitResult) -> None:
    for split, auc in fitted.metrics["auc_preliminary"].items():
        assert 0.78 < auc < 0.83, split
    assert 0.78 < fitted.metrics["auc_final_all_rows"] < 0.83


def test_threshold_is_the_75th_percentile_of_training_predictions(fitted: FitResult, synthetic_csv) -> None:
    raw = pd.read_csv(synthetic_csv, dtype=str, keep_default_na=False).drop(columns="y")
    phat = fitted.pipeline.predict_proba(raw)[:, 1]
    assert fitted.threshold == pytest.approx(np.percentile(phat, 75), abs=1e-12)
    assert abs(fitted.threshold - 0.712) < 0.02


def test_fitted_pipeline_scores_raw_client_rows(fitted: FitResult, real_rows) -> None:
    results = score_records(fitted.pipeline, [r["values"] for r in real_rows["rows"]], fitted.threshold)
    assert all(0 < r["phat"] < 1 for r in results)


def test_fingerprint_names_the_data(fitted: FitResult, synthetic_csv) -> None:
    assert fitted.fingerprint["rows"] == 40_000
    assert re.fullmatch(r"[0-9a-f]{64}", fitted.fingerprint["sha256"])
