"""Fixtures shared by every test module."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sklearn.pipeline import Pipeline

from training.approved import build_approved, load_reference

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    return load_reference()


@pytest.fixture(scope="session")
def approved(reference: dict[str, Any]) -> Pipeline:
    return build_approved(reference)


@pytest.fixture(scope="session")
def real_rows() -> dict[str, Any]:
    return json.loads((DATA / "real_rows.json").read_text())
