"""Deterministic synthetic data of the exercise-26 raw schema, labelled by the approved model."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pandas as pd

from training.approved import build_approved, load_reference

MISSING_RATE = 0.02
REGION_SHARES = {"america": 0.1, "asia": 0.4, "germany": 0.4, "japan": 0.1}


def _column_stats() -> dict[str, dict[str, float]]:
    text = resources.files("training.data").joinpath("column_stats_40k.json").read_text()
    return json.loads(text)["data"]["per_column"]


def _money(values: np.ndarray, rng: np.random.Generator) -> list[str]:
    """Write money as clients do: '$6,882.34 ', '($5,032.58)', sometimes '$-5,032.58' or '$3709.93'."""
    style = rng.random(len(values))
    out = []
    for value, s in zip(values.tolist(), style.tolist()):
        if s < 0.05:
            out.append(f"${value:.2f}")
        elif s < 0.10:
            out.append(f"${value:,.2f}")
        elif value < 0:
            out.append(f"(${-value:,.2f})")
        else:
            out.append(f"${value:,.2f} ")
    return out


def _percent(values: np.ndarray, rng: np.random.Generator) -> list[str]:
    with_sign = rng.random(len(values)) >= 0.05
    return [f"{v:.2f}%" if sign else f"{v:.2f}" for v, sign in zip(values.tolist(), with_sign)]


def synthesize(rows: int, seed: int = 26) -> pd.DataFrame:
    """Return `rows` raw rows x0..x99 plus a label `y` drawn from the approved model."""
    rng = np.random.default_rng(seed)
    reference = load_reference()
    stats = _column_stats()
    levels = reference["categorical_levels"]
    columns: dict[str, object] = {}
    for i in range(100):
        name = f"x{i}"
        if name in levels:
            choices = levels[name]
            shares = [REGION_SHARES[c] for c in choices] if name == "x31" else None
            values = rng.choice(np.array(choices, dtype=object), size=rows, p=shares)
        else:
            numbers = rng.normal(stats[name]["scaler_mean"], stats[name]["scaler_scale"], rows)
            if name == "x12":
                values = np.array(_money(numbers, rng), dtype=object)
            elif name == "x63":
                values = np.array(_percent(numbers, rng), dtype=object)
            else:
                values = numbers.round(6).astype(object)
        values[rng.random(rows) < MISSING_RATE] = None
        columns[name] = values
    frame = pd.DataFrame(columns)
    phat = build_approved(reference).predict_proba(frame)[:, 1]
    frame["y"] = (rng.random(rows) < phat).astype(int)
    return frame
