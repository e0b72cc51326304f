"""Transform + predict throughput: the lean pipeline against a naive pandas path.

Run: python -m bench.transform [--repeat N]. Prints rows/s for 1, 100 and 10,000
record dicts, both paths measured in the same run, and the ratio between them.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from training.approved import build_approved, load_reference
from training.synth import synthesize

_IMPUTE_SCALE = ("imputer_mean", "scaler_mean", "scaler_scale")


def naive_features(reference: dict[str, Any], records: list[dict[str, Any]]) -> pd.DataFrame:
    """Build the model's inputs the way the replaced system did: DataFrame, get_dummies, impute, scale, reindex.

    Every numeric column is converted, imputed and scaled, as the original notebook did, whether
    the model reads it or not; the arithmetic runs on the whole frame at once.
    """
    frame = pd.DataFrame(records)
    frame["x12"] = frame["x12"].str.replace(r"[$,)\s]", "", regex=True).str.replace("(", "-")
    frame["x63"] = frame["x63"].str.replace("%", "")
    numeric = reference["numeric_columns"]
    stats = reference["numeric_statistics_32k_split"]
    imputed, means, scales = (np.array([stats[c][key] for c in numeric]) for key in _IMPUTE_SCALE)
    values = frame[numeric].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    values = (np.where(np.isnan(values), imputed, values) - means) / scales
    numbers = pd.DataFrame(values, columns=numeric, index=frame.index)
    dummies = pd.get_dummies(frame[list(reference["categorical_levels"])], dtype=float)
    features = pd.concat([numbers, dummies], axis=1)
    return features.reindex(columns=reference["variables_model_order"], fill_value=0.0)


def naive_predict(reference: dict[str, Any], records: list[dict[str, Any]]) -> np.ndarray:
    """Score the way the replaced system did: naive features, then the logistic function by hand."""
    features = naive_features(reference, records)
    coefs = np.array([reference["coefficients"][v] for v in features.columns])
    return 1.0 / (1.0 + np.exp(-(features.to_numpy(dtype=float) @ coefs)))


def lean_predict(pipeline: Pipeline, records: list[dict[str, Any]]) -> np.ndarray:
    """Score with the served pipeline: parse, encode, select, predict."""
    frame, _ = pipeline.named_steps["parse"].parse(records)
    return pipeline[1:].predict_proba(frame)[:, 1]


def best_seconds(run: Callable[[], object], repeat: int) -> float:
    """Return the best wall time of `repeat` runs."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    """Print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    reference = load_reference()
    pipeline = build_approved(reference)
    records = synthesize(10_000, seed=7).drop(columns="y").to_dict("records")
    lean = lean_predict(pipeline, records[:1000])
    naive = naive_predict(reference, records[:1000])
    assert np.allclose(lean, naive, atol=1e-9), "the two paths disagree"

    print(f"{'rows':>7} {'naive ms':>9} {'lean ms':>8} {'naive rows/s':>13} {'lean rows/s':>12} {'speed-up':>8}")
    for n in (1, 100, 10_000):
        batch = records[:n]
        naive_s = best_seconds(lambda b=batch: naive_predict(reference, b), args.repeat)
        lean_s = best_seconds(lambda b=batch: lean_predict(pipeline, b), args.repeat)
        print(
            f"{n:>7} {naive_s * 1e3:>9.2f} {lean_s * 1e3:>8.2f} {n / naive_s:>13,.0f} "
            f"{n / lean_s:>12,.0f} {naive_s / lean_s:>7.1f}x"
        )


if __name__ == "__main__":
    main()
