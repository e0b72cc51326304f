"""The synchronous service this project replaces: Flask under gunicorn, pandas on every request.

Each request is scored in the server process that received it, with the naive path of
`bench.transform`: JSON parse, DataFrame, get_dummies, impute, scale, then the approved model's
predict_proba. It answers the result rows the project answers, keys in the same order.

Run by `bench.compare`: gunicorn --workers N "bench.baseline:create_app()".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flask import Flask, Response, jsonify, request
from sklearn.linear_model import LogisticRegression

from bench.transform import naive_features
from training.approved import build_approved, load_reference


def naive_rows(
    reference: dict[str, Any], model: LogisticRegression, records: list[dict[str, Any]], threshold: float
) -> list[dict[str, Any]]:
    """Score records with pandas and return one row per record: outcome, phat, row and the model's inputs."""
    features = naive_features(reference, records)
    phat = model.predict_proba(features.to_numpy(dtype=float))[:, 1]
    table = features.assign(business_outcome=(phat >= threshold).astype(int), phat=phat, row=np.arange(len(phat)))
    return table[sorted(table.columns)].to_dict("records")


def create_app() -> Flask:
    """Return the baseline app; each server process builds its own copy of the approved model."""
    reference = load_reference()
    model = build_approved(reference)[-1]
    threshold = float(reference["threshold"])
    app = Flask(__name__)

    @app.post("/predict")
    def predict() -> Response:
        payload = request.get_json()
        records = payload if isinstance(payload, list) else [payload]
        return jsonify(rows=len(records), results=naive_rows(reference, model, records, threshold))

    @app.get("/health")
    def health() -> Response:
        return jsonify(status="ok")

    return app


def baseline_command(bind: str, workers: int, config: str) -> list[str]:
    """Return the baseline's gunicorn command line: sync workers, one request per process at a time.

    `config` must name a file of its own: gunicorn otherwise reads the project's ./gunicorn.conf.py.
    """
    return [
        "gunicorn",
        "--config", config,
        "--bind", bind,
        "--workers", str(workers),
        "--worker-class", "sync",
        "--timeout", "600",
        "bench.baseline:create_app()",
    ]  # fmt: skip
