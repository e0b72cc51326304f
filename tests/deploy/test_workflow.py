from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.deploy.parsing import ROOT


@pytest.fixture(scope="module")
def workflow() -> dict[Any, Any]:
    return yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())


@pytest.fixture(scope="module")
def steps(workflow) -> list[dict[str, Any]]:
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    return job["steps"]


def test_runs_on_push_and_pull_request(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers)


def test_sets_up_python_3_11(steps):
    uses = {step["uses"].split("@")[0]: step for step in steps if "uses" in step}
    assert steps[0].get("uses") == "actions/checkout@v4"
    assert uses["actions/setup-python"]["uses"] == "actions/setup-python@v5"
    assert str(uses["actions/setup-python"]["with"]["python-version"]) == "3.11"


def test_runs_the_one_ci_entry_point(steps):
    assert [step["run"].strip() for step in steps if "run" in step] in (["bash .ci/run"], [".ci/run"])
    assert (ROOT / ".ci/run").is_file()
