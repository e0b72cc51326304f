"""A second tabular model, trained from a CSV of its own schema by the CLI, served beside the first."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import requests

from client import PredictionClient
from model_store import ModelStore, artifacts
from stack.processes import ROOT, free_port, start_api
from training.scoring import score_records

pytestmark = pytest.mark.integration
PLANS = {"basic": -0.6, "pro": 0.2, "max": 0.9}


def churn_csv(path: Path, rows: int = 4_000, seed: int = 5) -> list[dict[str, str]]:
    """Write rows in client formats (money, percents, blanks, 'nan') with a known logistic signal."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(1, 120, rows)
    fee = rng.normal(80, 30, rows)
    discount = rng.uniform(0, 40, rows)
    plan = rng.choice(list(PLANS), rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    logit = -0.03 * (tenure - 60) + 0.02 * (fee - 80) - 0.05 * (discount - 20) + np.vectorize(PLANS.get)(plan)
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    records = []
    for i in range(rows):
        money = f"${fee[i]:,.2f}" if fee[i] >= 0 else f"(${-fee[i]:,.2f})"
        records.append({
            "tenure_months": "" if i % 97 == 0 else str(tenure[i]),
            "monthly_fee": money + (" " if i % 3 == 0 else ""),
            "discount": "nan" if i % 89 == 0 else f"{discount[i]:.2f}%",
            "plan": plan[i],
            "region": region[i],
            "churned": str(int(churned[i])),
        })  # fmt: skip
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    return records


def test_a_model_trained_from_another_csv_is_served_exactly(stack, model_store_dir, tmp_path) -> None:
    records = churn_csv(tmp_path / "churn.csv")
    command = [
        sys.executable, "-m", "training", "--store", str(model_store_dir), "--name", "churn",
        "fit", "--data", str(tmp_path / "churn.csv"), "--target", "churned", "--features", "5", "--promote",
    ]  # fmt: skip
    trained = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=True)
    assert "promoted churn v1" in trained.stdout

    store = ModelStore(model_store_dir)
    manifest = store.manifest("churn", 1)
    assert manifest["metrics"]["auc_final_all_rows"] > 0.7
    assert set(manifest["input_fields"]) <= {"tenure_months", "monthly_fee", "discount", "plan", "region"}
    assert len(manifest["output_variables"]) == 5

    # The session's workers serve it too: a job names its model and version, and a worker loads it on first use.
    bind = f"127.0.0.1:{free_port()}"
    api = start_api({**stack.env, "MODEL_NAME": "churn"}, tmp_path, bind)
    try:
        url = f"http://{bind}"
        assert requests.get(f"{url}/ready", timeout=10).json()["model"] == {"name": "churn", "version": 1}
        batch = [{k: v for k, v in record.items() if k != "churned"} for record in records[:200]]
        batch += [{"plan": "enterprise", "monthly_fee": "$95.00"}, {"monthly_fee": "abc", "plan": "pro"}]
        submitted = requests.post(f"{url}/predict", json=batch, timeout=30)
        assert submitted.status_code == 202, submitted.text
        assert submitted.json()["model"] == {"name": "churn", "version": 1}
        body = stack.wait(submitted.json()["task_id"], url=url)
    finally:
        api.stop()

    assert body["status"] == "succeeded"
    loaded = artifacts.load(store, "churn", 1)
    expected = json.loads(json.dumps(score_records(loaded.pipeline, batch, loaded.threshold)))
    assert body["results"] == expected
    variables = sorted(manifest["output_variables"])
    assert list(body["results"][0]) == sorted(["business_outcome", "phat", "row", *variables])
    bad, unseen = body["results"][-1], body["results"][-2]
    assert (set(bad), bad["row"], bad["error"]["field"]) == ({"row", "error"}, 201, "monthly_fee")
    assert unseen["row"] == 200 and all(unseen[v] == 0.0 for v in variables if v.startswith("plan_"))
    # The session's API serves glm26 by default; a client names the other model per request.
    with PredictionClient(stack.url) as client:
        assert client.predict(batch, model="churn") == expected
    print("churn model variables:", variables, "AUC", round(manifest["metrics"]["auc_final_all_rows"], 3))
