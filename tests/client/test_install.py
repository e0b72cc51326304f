"""The client is a distribution of its own: it installs with pip alone and needs nothing of the service."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.client.scripted import MiniService, ScriptedServer

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "client"
USES = {"requests", "urllib3", "tqdm"}
# The service's own packages and its scientific stack: the client must run without any of them.
FORBIDDEN = {"api", "worker", "jobs", "settings", "training", "model_store", "stack", "pandas", "numpy", "sklearn"}
IMPORT_ALL = "import client, client.__main__, client.api, client.fields, client.files, client.retries"


def declared_dependencies() -> set[str]:
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    return {re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower() for requirement in project["dependencies"]}


def imported_distributions() -> set[str]:
    names = set()
    for source in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", "client"}


def clean_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "API_KEY", "PREDICT_URL")}


def test_the_distribution_declares_exactly_what_the_client_imports() -> None:
    assert imported_distributions() == USES
    assert declared_dependencies() == USES


def test_importing_the_client_loads_nothing_of_the_service() -> None:
    code = f"{IMPORT_ALL}; import json, sys; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert loaded >= USES  # the probe did load the client
    assert loaded & FORBIDDEN == set()


@pytest.mark.slow
def test_pip_installs_the_client_alone_into_a_fresh_venv(tmp_path: Path, server: ScriptedServer) -> None:
    source = tmp_path / "client"  # a copy, since pip builds in the source folder
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)  # a plain venv: no site packages
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
        env=clean_env(), capture_output=True, text=True, timeout=540, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-3000:]

    elsewhere = tmp_path / "elsewhere"  # not the repository: only the installed copy can be imported
    elsewhere.mkdir()
    code = (
        f"{IMPORT_ALL}; import json, sys; from client import PredictionClient; "
        "print(json.dumps([client.__file__, sorted({m.split('.')[0] for m in sys.modules})]))"
    )
    probe = subprocess.run([python, "-c", code], cwd=elsewhere, env=clean_env(), capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    location, loaded = json.loads(probe.stdout)
    assert Path(location).is_relative_to(venv)
    assert set(loaded) & FORBIDDEN == set()

    listed = subprocess.run([python, "-m", "pip", "list", "--format", "json"], capture_output=True, text=True)
    installed = {item["name"].lower() for item in json.loads(listed.stdout)}
    # What requests needs comes along; nothing else does.
    assert installed - {"pip", "setuptools"} == USES | {"glm-queue-client", "idna", "certifi", "charset-normalizer"}

    server.script(MiniService())
    records = elsewhere / "records.csv"
    records.write_text("v,y\n0.25,0\n0.75,1\n")
    command = [python, "-m", "client", "predict", str(records), "--url", server.url]
    done = subprocess.run(command, cwd=elsewhere, env=clean_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert server.seen[0].json() == [{"v": "0.25"}, {"v": "0.75"}]
    assert "2/2" in done.stderr
