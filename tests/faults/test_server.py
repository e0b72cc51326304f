"""gunicorn's own edges, on a real server: its errors in the JSON shape, and no query strings in the access log."""

from __future__ import annotations

import json
import socket

import pytest
import requests

from tests.faults.conftest import FaultStack

pytestmark = pytest.mark.faults


def raw_exchange(url: str, request: bytes) -> tuple[str, dict[str, str], bytes]:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    return status_line, headers, body


def test_gunicorns_own_errors_use_the_json_error_shape(fault_stack: FaultStack, report) -> None:
    fault_stack.start_api()
    cases = {
        "request line over 4 KiB": (b"GET /health?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414,
                                    "uri_too_long"),
        "header over 8 KiB": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431,
                              "headers_too_large"),
        "malformed request line": (b"GET\r\n\r\n", 400, "bad_request"),
        "bad header name": (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400, "bad_request"),
    }  # fmt: skip
    seen = {}
    for name, (request, status, code) in cases.items():
        status_line, headers, body = raw_exchange(fault_stack.url, request)
        seen[name] = status_line
        assert status_line.startswith(f"HTTP/1.1 {status} "), name
        assert headers["content-type"] == "application/json", name
        error = json.loads(body)["error"]
        assert error["code"] == code and error["message"], name
        assert b"aaaa" not in body and b"bbbb" not in body  # what the client sent is not echoed
    report("gunicorn errors", seen)


def test_the_access_log_leaves_out_query_strings(fault_stack: FaultStack) -> None:
    fault_stack.start_api()
    secret = "k3y-that-must-not-be-logged"
    # Refused as unknown parameters (api.params), but logged all the same.
    assert requests.get(f"{fault_stack.url}/health?api_key={secret}", timeout=10).status_code == 422
    assert requests.get(f"{fault_stack.url}/tasks/{'0' * 32}?api_key={secret}", timeout=10).status_code == 422
    fault_stack.api.stop()  # the log is complete once the server has stopped
    log = fault_stack.api.log_path.read_text()
    assert '"GET /health HTTP/1.1" 422' in log and f'"GET /tasks/{"0" * 32} HTTP/1.1" 422' in log
    assert secret not in log
