from __future__ import annotations

import re

import pytest

from settings import Settings
from tests.deploy.parsing import ROOT, read_env_file, referenced_variables, strings

ENV_EXAMPLE = ROOT / ".env.example"
SECRETS = {"REDIS_PASSWORD", "FLOWER_BASIC_AUTH", "RABBITMQ_PASSWORD"}
COMMENTED_OUT = re.compile(r"# ?([A-Z][A-Z0-9_]*)=(.*)")


@pytest.fixture(scope="module")
def assigned() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def optional() -> dict[str, str]:
    """The settings listed commented out at their defaults."""
    matches = (COMMENTED_OUT.fullmatch(line) for line in ENV_EXAMPLE.read_text().splitlines())
    return {m.group(1): m.group(2) for m in matches if m}


def test_every_setting_is_named(setting_names):
    text = ENV_EXAMPLE.read_text()
    assert {name for name in setting_names if not re.search(rf"\b{name}\b", text)} == set()


def test_only_the_secrets_are_assigned_and_they_are_empty(assigned):
    assert assigned == dict.fromkeys(SECRETS, "")


def test_lists_every_variable_compose_reads(assigned, optional, compose):
    referenced = set().union(*(referenced_variables(s) for s in strings(compose)))
    assert set(assigned) | set(optional) == referenced


def test_every_variable_has_a_comment_above_it(assigned, optional):
    lines = ENV_EXAMPLE.read_text().splitlines()
    for number, line in enumerate(lines):
        match = COMMENTED_OUT.fullmatch(line)
        if match or (line and not line.startswith("#")):
            above = lines[number - 1] if number else ""
            assert above.startswith("#") and not COMMENTED_OUT.fullmatch(above), line


def test_listed_values_are_the_settings_defaults(optional):
    from_example, defaults = Settings.from_env(optional), Settings()
    settings = {name for name in optional if name != "API_HOST"}  # API_HOST is compose's, not the app's
    differing = {name for name in settings if getattr(from_example, name.lower()) != getattr(defaults, name.lower())}
    assert differing == set()
