"""The client splits an input over the service's row limit on its own, and says why it waits."""

from __future__ import annotations

import socket

import pytest

from client.__main__ import main
from client.api import PredictionClient
from client.errors import ClientError
from client.limits import max_rows_in_spec
from tests.client.scripted import MiniService, Reply, ScriptedServer, Seen, error


class LimitedService(MiniService):
    """MiniService that refuses jobs over `max_rows` with the 413 the service gives, and may publish its spec."""

    def __init__(self, max_rows: int, spec_rows: int | None = None) -> None:
        super().__init__()
        self.max_rows, self.spec_rows = max_rows, spec_rows

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "GET" and seen.path == "/openapi.json":
            if self.spec_rows is None:
                return error(404, "not_found", "no such path")
            body = {"anyOf": [{"$ref": "#/components/schemas/Record"}, {"type": "array", "maxItems": self.spec_rows}]}
            return Reply(200, {"paths": {"/predict": {"post": {"requestBody": {"content": {"application/json": {
                "schema": body}}}}}}})  # fmt: skip
        if seen.method == "POST" and len(seen.json()) > self.max_rows:
            return error(413, "too_many_rows", f"At most {self.max_rows} records per request.",
                         {"rows": len(seen.json()), "max_rows": self.max_rows})  # fmt: skip
        return super().__call__(seen)


def posted_sizes(server: ScriptedServer) -> list[int]:
    return [len(seen.json()) for seen in server.seen if seen.method == "POST"]


def test_a_413_naming_the_limit_splits_the_input_and_joins_the_results_in_order(server: ScriptedServer) -> None:
    server.script(LimitedService(max_rows=2))
    records = [{"v": i / 10} for i in range(5)]
    with PredictionClient(server.url, backoff=0.01) as client:
        results = client.predict(records, poll_interval=0.01)
    assert posted_sizes(server) == [5, 2, 2, 1]
    assert [(item["row"], item["phat"]) for item in results] == [(i, i / 10) for i in range(5)]


def test_a_large_input_is_split_by_the_limit_the_openapi_document_states(server: ScriptedServer) -> None:
    server.script(LimitedService(max_rows=600, spec_rows=600))
    records = [{"v": (i % 10) / 10} for i in range(1_500)]
    with PredictionClient(server.url, backoff=0.01) as client:
        results = client.predict(records, poll_interval=0.01)
    assert server.paths()[0] == "GET /openapi.json"
    assert posted_sizes(server) == [600, 600, 300]  # no upload was refused
    assert [item["row"] for item in results] == list(range(1_500))
    assert [item["phat"] for item in results[598:602]] == [0.8, 0.9, 0.0, 0.1]


def test_a_413_without_the_limit_is_reported_not_retried(server: ScriptedServer) -> None:
    server.script(error(413, "too_many_rows", "At most 2 records per request.", {"rows": 5}))
    with PredictionClient(server.url, backoff=0.01) as client, pytest.raises(ClientError) as refused:
        client.predict([{"v": 0.1}] * 5)
    assert refused.value.code == "too_many_rows"
    assert posted_sizes(server) == [5]


def test_the_spec_reader_finds_the_array_limit_or_none() -> None:
    assert max_rows_in_spec({}) is None
    assert max_rows_in_spec({"paths": {"/predict": {"post": {"requestBody": {"content": {"application/json": {
        "schema": {"anyOf": [{"type": "object"}, {"type": "array", "maxItems": 7}]}}}}}}}}) == 7  # fmt: skip


def test_the_cli_says_when_it_retries_and_why(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("API_KEY", raising=False)
    (tmp_path / "in.json").write_text('[{"v": 1}]')
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["predict", str(tmp_path / "in.json"), "--url", f"http://127.0.0.1:{port}", "--retries", "2"]) == 3
    err = capsys.readouterr().err
    retries = [line for line in err.splitlines() if line.startswith("retrying POST /predict")]
    assert len(retries) == 2, err
    assert f"at 127.0.0.1:{port}: " in retries[0] and "Connection refused" in retries[0]
    assert "attempt 2 of 3" in retries[0] and "attempt 3 of 3" in retries[1]


def test_the_cli_says_when_a_503_makes_it_wait(server: ScriptedServer, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("API_KEY", raising=False)
    (tmp_path / "in.json").write_text('[{"v": 1}]')
    server.script(error(503, "redis_unavailable", "try later", Retry_After="0"), LimitedService(max_rows=5))
    assert main(["predict", str(tmp_path / "in.json"), "--url", server.url]) == 0
    err = capsys.readouterr().err
    assert "retrying POST /predict" in err and "the service answered 503; attempt 2 of 6 in 0.0 s" in err
