"""The Docker route for real: the Dockerfile built with podman, docker-compose.yml run by podman-compose.

`make container-test` runs this module (it is left out of `make test`); it skips, saying why, where
podman cannot run. The tests share one stack and run in file order, from up to down.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from jobs import keys
from stack.processes import free_port
from tests.deploy import podman as pm
from tests.deploy.parsing import ROOT
from training.scoring import score_records
from training.synth import synthesize

pytestmark = [pytest.mark.containers, pytest.mark.slow]

THRESHOLD = 0.712
# OpenBLAS picks its kernels by CPU: the host may pin them (OPENBLAS_CORETYPE=Haswell here) while the
# container picks SkylakeX, and phat then differs in the last bits. Every other field must be equal.
PHAT_TOLERANCE = 1e-12
# Settings for the stack under test: small chunks so that big jobs spread over workers, and a watchdog
# that re-drives a dead worker's chunks within seconds (as in tests/faults).
TEST_SETTINGS = {
    "CHUNK_ROWS": "500",
    "WATCHDOG_INTERVAL_SECONDS": "1",
    "STALL_SECONDS": "2",
    "TASK_SOFT_TIME_LIMIT": "3",
    "TASK_TIME_LIMIT": "5",
    "VISIBILITY_TIMEOUT": "20",
}


def say(request: pytest.FixtureRequest, text: str) -> None:
    """Print a line to the terminal past pytest's capture: the figures this test reports."""
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        request.config.pluginmanager.get_plugin("terminalreporter").write_line(f"[containers] {text}")


def until(check: Any, seconds: float, what: str, every: float = 0.5) -> Any:
    """Call `check` until it returns something true; fail, naming `what`, after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(every)
    raise AssertionError(f"not within {seconds} s: {what}")


def in_process(approved: Any, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return json.loads(json.dumps(score_records(approved, records, THRESHOLD)))


def differences(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> tuple[list[int], float]:
    """Return the rows that differ beyond PHAT_TOLERANCE, and the largest phat difference of all rows."""
    assert len(got) == len(want)
    rows, largest = [], 0.0
    for row, (mine, theirs) in enumerate(zip(got, want)):
        apart = abs(mine.get("phat", 0.0) - theirs.get("phat", 0.0))
        largest = max(largest, apart)
        others = {k: v for k, v in mine.items() if k != "phat"} != {k: v for k, v in theirs.items() if k != "phat"}
        if others or mine.keys() != theirs.keys() or apart > PHAT_TOLERANCE:
            rows.append(row)
    return rows, largest


def readme_example() -> dict[str, Any]:
    """The record of the README's first curl example."""
    curl = re.compile(r"curl -s -H 'Content-Type: application/json' -d '(\{.*?\})'", re.S)
    match = curl.search((ROOT / "README.md").read_text())
    assert match, "the README's curl example is gone"
    return json.loads(match.group(1))


def descendants(pid: int) -> list[int]:
    """Return the pids of every process below `pid`."""
    found = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in map(int, listing.read_text().split()):
            found += [child, *descendants(child)]
    return found


@dataclass
class Deployment:
    url: str
    project: pm.Project

    def submit(self, records: Any) -> str:
        response = requests.post(f"{self.url}/predict", json=records, timeout=60)
        assert response.status_code == 202, response.text
        return response.json()["task_id"]

    def status(self, task_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.url}/tasks/{task_id}", timeout=60)
        assert response.status_code == 200, response.text
        return response.json()

    def wait(self, task_id: str, seconds: float = 180) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            body = self.status(task_id)
            return body if body["status"] in ("succeeded", "failed") else None

        return until(finished, seconds, f"task {task_id} finished", every=0.2)

    def score(self, records: Any) -> dict[str, Any]:
        return self.wait(self.submit(records))

    def ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/ready", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def workers(self, running: bool = True) -> list[str]:
        return self.project.containers("worker", running=running)

    def worker_ready(self, container: str) -> bool:
        return re.search(r"celery@\S+ ready\.", self.project.logs(container)) is not None

    def scale(self, workers: int) -> list[str]:
        """Scale the workers and wait until each is ready to consume; return their containers."""
        self.project.up(workers=workers)
        names = self.workers()
        assert len(names) == workers, names
        until(lambda: all(self.worker_ready(name) for name in names), 120, f"{workers} workers ready")
        return names

    def frozen_holding(self, worker: str, task_id: str) -> list[str]:
        """Freeze a worker; return the chunks of a job started and unfinished, or thaw it and return none.

        Only call this while no other worker consumes: each unfinished chunk is then in this worker's hands.
        """
        self.project.podman.run("pause", worker)
        time.sleep(0.5)  # what the worker sent before it froze reaches Redis and runs first
        started = set(self.redis_cli("HKEYS", keys.attempts(task_id)).split())
        held = sorted(started - set(self.redis_cli("SMEMBERS", keys.done(task_id)).split()), key=int)
        if not held:
            self.project.podman.run("unpause", worker)
        return held

    def kill_frozen(self, worker: str) -> None:
        """SIGKILL every process of a frozen worker, then thaw it: none of them runs another instruction."""

        def main_pid() -> int:
            return int(self.project.podman.run("inspect", "--format", "{{.State.Pid}}", worker).stdout)

        # `podman kill` on the paused worker was seen to let it finish its chunk before it died.
        pid = main_pid()
        for process in [pid, *descendants(pid)]:
            os.kill(process, signal.SIGKILL)
        self.project.podman.run("unpause", worker)
        until(lambda: main_pid() != pid, 30, f"{worker} dead")  # 0, or another pid if its restart policy acted

    def redis_cli(self, *argv: str) -> str:
        # The container's REDISCLI_AUTH holds the password, as for its healthcheck.
        (redis,) = self.project.containers("redis")
        return self.project.exec(redis, "redis-cli", "--no-auth-warning", *argv).stdout


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> pm.Podman:
    reason = pm.unavailable()
    if reason:
        pytest.skip(f"container test skipped: {reason}")
    return pm.Podman(pm.write_containers_conf(tmp_path_factory.mktemp("podman") / "containers.conf"))


@pytest.fixture(scope="module")
def image(podman: pm.Podman, request: pytest.FixtureRequest) -> str:
    started = time.monotonic()
    source = pm.prepare_standins(podman)
    say(request, f"stand-in images {source}: {time.monotonic() - started:.0f} s")
    started = time.monotonic()
    pm.build_image(podman)
    say(request, f"podman build of the Dockerfile: {time.monotonic() - started:.0f} s")
    return pm.IMAGE


@pytest.fixture(scope="module")
def before(podman: pm.Podman) -> dict[str, set[str]]:
    """Every container, volume and network there was before the stack came up."""
    return podman.names()


@pytest.fixture(scope="module")
def deployment(
    podman: pm.Podman, image: str, before: dict[str, set[str]], tmp_path_factory: pytest.TempPathFactory, request
) -> Iterator[Deployment]:
    port = free_port()
    env_file = tmp_path_factory.mktemp("compose") / ".env"
    settings = {"REDIS_PASSWORD": secrets.token_hex(16), "PORT": str(port), **TEST_SETTINGS}
    env_file.write_text("".join(f"{name}={value}\n" for name, value in settings.items()))
    project = pm.Project(f"glmqtest{os.getpid()}", env_file, podman)
    deployment = Deployment(f"http://127.0.0.1:{port}", project)
    started = time.monotonic()
    try:
        project.up()
        until(deployment.ready, 180, f"{deployment.url}/ready answered 200")
        say(request, f"podman-compose up to /ready: {time.monotonic() - started:.0f} s")
        yield deployment
    finally:
        if project.leftovers():
            project.down()


@pytest.fixture(scope="module")
def ten_thousand() -> list[dict[str, Any]]:
    return json.loads(synthesize(10_000, seed=11).drop(columns="y").to_json(orient="records"))


def requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[\[=<>~ ]", line)[0].lower().replace("_", "-"))
    return names


def test_the_image_installs_the_runtime_requirements_only(podman, image):
    listed = podman.run("run", "--rm", "--network=none", image, "python", "-m", "pip", "list", "--format=freeze")
    installed = {line.split("==")[0].lower().replace("_", "-") for line in listed.stdout.split()}
    runtime = requirement_names(ROOT / "requirements.txt")
    dev_only = requirement_names(ROOT / "requirements-dev.txt") - runtime
    assert runtime - installed == set()
    assert dev_only & installed == set()
    inspected = json.loads(podman.run("image", "inspect", image).stdout)[0]
    assert inspected["Config"]["User"] == "app"
    assert "/health" in " ".join(inspected["Healthcheck"]["Test"])


def test_the_readme_example_scores_as_in_process(deployment, approved, request):
    record = readme_example()
    body = deployment.score(record)
    assert (body["status"], body["model"]) == ("succeeded", {"name": "glm26", "version": 1})
    rows, largest = differences(body["results"], in_process(approved, [record]))
    say(request, f"README example: phat {body['results'][0]['phat']}, {largest:.1e} from in-process")
    assert rows == []


def test_ten_thousand_rows_score_as_in_process_row_for_row(deployment, approved, ten_thousand, request):
    body = deployment.score(ten_thousand)
    assert (body["status"], body["rows_done"]) == ("succeeded", 10_000)
    expected = in_process(approved, ten_thousand)
    rows, largest = differences(body["results"], expected)
    unequal = sum(got != want for got, want in zip(body["results"], expected))
    say(request, f"10,000 rows: {unequal} phat not bit-equal to in-process, the largest {largest:.1e} apart")
    assert rows == []


@pytest.mark.parametrize("service", ["redis", "api", "worker"])
def test_healthchecks_pass_when_run(deployment, service):
    # Podman runs healthchecks on systemd timers, and these machines have no systemd: run each once.
    (container, *_) = deployment.project.containers(service, running=True)
    result = deployment.project.podman.run("healthcheck", "run", container, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_api_and_workers_run_as_non_root_and_cannot_write_the_models(deployment):
    project = deployment.project
    for container in [*project.containers("api"), *deployment.workers()]:
        top = project.podman.run("top", container, "huser", "comm").stdout.splitlines()[1:]
        assert top and {line.split()[0] for line in top} == {"10001"}, (container, top)
        refused = project.exec(container, "touch", "/models/probe", check=False)
        assert refused.returncode != 0 and "Read-only file system" in refused.stderr, refused
    # model-init wrote the model into the volume as the same unprivileged user.
    (api,) = project.containers("api")
    assert project.exec(api, "stat", "--format=%u", "/models/glm26").stdout.split() == ["10001"]


def test_three_workers_all_consume(deployment, ten_thousand, request):
    started = time.monotonic()
    workers = deployment.scale(3)
    say(request, f"scaled to 3 workers in {time.monotonic() - started:.0f} s: {', '.join(workers)}")
    task_id = deployment.submit(ten_thousand * 3)
    assert deployment.wait(task_id)["status"] == "succeeded"
    chunks = {name: deployment.project.logs(name).count(f"of job {task_id}") for name in workers}
    say(request, f"chunks of one 30,000-row job by worker: {chunks}")
    assert sum(chunks.values()) >= 60 and all(chunks.values()), chunks


def test_a_killed_workers_chunks_are_finished(deployment, ten_thousand, request):
    project = deployment.project
    victim, *survivors = deployment.workers()
    assert len(survivors) == 2, survivors
    # Only the victim consumes until it dies: the others are frozen. It is frozen too, at a moment when it
    # holds a chunk it started and has not finished, and killed so.
    project.podman.run("pause", *survivors)
    task_id = deployment.submit(ten_thousand * 6)
    held = until(lambda: deployment.frozen_holding(victim, task_id), 60, f"{victim} holding a chunk", every=0.05)
    deployment.kill_frozen(victim)
    killed_at = time.monotonic()
    project.podman.run("unpause", *survivors)
    body = deployment.wait(task_id, seconds=240)
    assert body["status"] == "succeeded", body.get("error")
    assert [row["row"] for row in body["results"]] == list(range(len(ten_thousand) * 6))
    attempts = deployment.redis_cli("HGETALL", keys.attempts(task_id)).split()
    started = dict(zip(attempts[::2], map(int, attempts[1::2]), strict=True))
    scored = {name: project.logs(name).count(f"of job {task_id}") for name in (victim, *survivors)}
    done_after = time.monotonic() - killed_at
    say(request, f"killed {victim} holding chunks {held}: done {done_after:.0f} s after; chunks scored {scored}")
    assert {chunk: started[chunk] for chunk in held} == dict.fromkeys(held, 2)


def test_a_redis_restart_keeps_the_queued_jobs(deployment, approved, real_rows):
    project = deployment.project
    workers = deployment.workers()
    project.podman.run("stop", "--time", "60", *workers)
    batches = [[readme_example()], [row["values"] for row in real_rows["rows"]]]
    task_ids = [deployment.submit(records) for records in batches]
    (redis,) = project.containers("redis")
    project.podman.run("restart", redis)
    until(lambda: deployment.redis_cli("PING").strip() == "PONG", 60, "redis answers PING")
    assert "appendonly.aof" in project.exec(redis, "ls", "-R", "/data").stdout
    until(deployment.ready, 60, "the API ready again")
    assert [deployment.status(task_id)["status"] for task_id in task_ids] == ["queued"] * len(task_ids)
    project.podman.run("start", *workers)
    for task_id, records in zip(task_ids, batches, strict=True):
        body = deployment.wait(task_id)
        assert body["status"] == "succeeded"
        assert differences(body["results"], in_process(approved, records))[0] == []


def test_down_leaves_nothing_behind(deployment, podman, before, request):
    started = time.monotonic()
    deployment.project.down()
    say(request, f"down: {time.monotonic() - started:.0f} s")
    assert deployment.project.leftovers() == []
    assert podman.names() == before
