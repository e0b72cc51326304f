"""Fixtures for the deployment files, parsed once per session."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest
import yaml

from settings import Settings
from tests.deploy.parsing import ROOT, Stage, parse_dockerfile


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="session")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="session")
def shared_env(compose: dict[str, Any]) -> dict[str, str]:
    return compose["x-app-env"]


@pytest.fixture(scope="session")
def stages() -> list[Stage]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


@pytest.fixture(scope="session")
def setting_names() -> set[str]:
    """The environment variable names settings.py reads."""
    return {f.name.upper() for f in fields(Settings)}
