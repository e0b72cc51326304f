"""The client needs no field of the service's answers beyond those client.fields declares."""

from __future__ import annotations

import json
from typing import Any

import pytest

from client import ClientError, JobFailedError, PredictionClient
from client.__main__ import main
from client.fields import ACCEPTED, ERROR, ITEMS, TASK, FieldPath
from tests.client.scripted import MiniService, Reply, ScriptedServer, Seen, error


def pruned(value: Any, paths: set[FieldPath]) -> Any:
    """Keep only the parts of `value` that `paths` reach."""
    if () in paths or not isinstance(value, dict | list):
        return value
    if isinstance(value, list):
        return [pruned(item, {path[1:] for path in paths if path[0] == ITEMS}) for item in value]
    steps = {path[0] for path in paths}
    return {key: pruned(item, {path[1:] for path in paths if path[0] == key}) for key, item in value.items()
            if key in steps}  # fmt: skip


class Pruning:
    """Answer as `service` does, with each body cut down to the fields the client declares it reads."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def __call__(self, seen: Seen) -> Reply:
        reply = self.service(seen) if callable(self.service) else self.service
        fields = ACCEPTED if reply.status == 202 else TASK if reply.status == 200 else ERROR
        return Reply(reply.status, pruned(reply.body, set(fields)), reply.headers, reply.delay)


def test_pruning_keeps_exactly_the_paths() -> None:
    body = {"a": {"b": 1, "c": 2}, "d": [{"e": 1, "f": 2}], "g": {"h": 1}, "i": 0}
    assert pruned(body, {("a", "b"), ("d", ITEMS, "e"), ("g",)}) == {"a": {"b": 1}, "d": [{"e": 1}], "g": {"h": 1}}


def test_submitting_waiting_and_paging_read_only_the_declared_fields(server: ScriptedServer) -> None:
    server.script(Pruning(MiniService()))
    records = [{"v": i / 10} for i in range(7)]
    with PredictionClient(server.url, backoff=0.01) as client:
        submitted = client.submit(records)
        assert (submitted.rows, submitted.model_name, submitted.model_version) == (7, "glm26", 1)
        body = client.wait(submitted.task_id, page_rows=3, poll_interval=0.01)
        assert [item["row"] for item in body["results"]] == list(range(7))
        assert client.predict(records, batch_rows=4)[-1] == {"business_outcome": 1, "phat": 0.6, "row": 6}


def test_a_failed_job_and_an_error_answer_are_read_from_the_declared_fields(server: ScriptedServer) -> None:
    service = MiniService(failing=f"{1:032x}")
    server.script(Pruning(service))
    with PredictionClient(server.url, backoff=0.01) as client:
        with pytest.raises(JobFailedError, match="failed \\(job_failed\\): chunk 0 lost"):
            client.predict([{"v": 0.5}], poll_interval=0.01)
        server.script(Pruning(error(422, "invalid_threshold", "No.", {"threshold": "7.0"})))
        with pytest.raises(ClientError) as caught:
            client.submit({"v": 0.5}, threshold=7)
    assert (caught.value.code, caught.value.message, caught.value.details) == (
        "invalid_threshold",
        "No.",
        {"threshold": "7.0"},
    )


def test_the_command_line_reads_only_the_declared_fields(server: ScriptedServer, tmp_path, capsys) -> None:
    server.script(Pruning(MiniService()))
    source = tmp_path / "records.json"
    source.write_text(json.dumps([{"v": 0.25}, {"v": 0.75}]))
    assert main(["predict", str(source), "--url", server.url, "--out", str(tmp_path / "out.csv")]) == 0
    assert (tmp_path / "out.csv").read_text().splitlines()[1:] == ["0,0,0.25,,", "1,1,0.75,,"]
    assert "2 rows scored, 0 rows with errors, 1 events" in capsys.readouterr().err
