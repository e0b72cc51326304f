"""The webhook POST on its own: signed headers, the vetted address, TLS checked against the name, no redirects."""

from __future__ import annotations

import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import urllib3
from standardwebhooks import Webhook

from jobs.targets import Target
from jobs.webhooks import Attempt, DeliveryState
from settings import Secret, Settings
from worker.webhooks import attempt_post, decide, post, signed_headers

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = b'{"type": "job.succeeded"}'


class Server:
    """A loopback HTTP(S) server that records each request and answers `status` (with a Location)."""

    def __init__(self, status: int, context: ssl.SSLContext | None = None) -> None:
        self.seen: list[dict[str, str]] = []
        self.names: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                server.seen.append({k.lower(): v for k, v in self.headers.items()} | {"path": self.path})
                self.send_response(status)
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            context.sni_callback = lambda sock, name, ctx: self.names.append(name)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def target(self, scheme: str, host: str) -> Target:
        return Target(scheme, host, self.port, f"{host}:{self.port}", "/in?x=1", "127.0.0.1")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for the name `localhost` only."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate) -> Iterator[Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    server = Server(204, context)
    yield server
    server.close()


def test_the_headers_are_signed_as_standard_webhooks_verifies_them() -> None:
    headers = signed_headers(SECRET, "msg_abc", BODY, time.time())
    assert Webhook(SECRET).verify(BODY, headers) == {"type": "job.succeeded"}
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(BODY + b" ", headers)


def test_https_connects_to_the_vetted_address_naming_the_host(tls_server: Server, certificate) -> None:
    status = post(tls_server.target("https", "localhost"), BODY, {"webhook-id": "msg_1"}, str(certificate[0]))
    assert status == 204
    assert tls_server.names == ["localhost"]  # SNI
    assert tls_server.seen[0]["host"] == f"localhost:{tls_server.port}"
    assert tls_server.seen[0]["path"] == "/in?x=1"


def test_a_certificate_for_another_name_or_an_unknown_ca_is_refused(tls_server: Server, certificate) -> None:
    with pytest.raises(urllib3.exceptions.SSLError):
        post(tls_server.target("https", "hooks.example.com"), BODY, {}, str(certificate[0]))
    with pytest.raises(urllib3.exceptions.SSLError):
        post(tls_server.target("https", "localhost"), BODY, {})  # the system's CAs do not know it
    assert tls_server.seen == []


def test_a_redirect_is_answered_not_followed() -> None:
    server = Server(302)
    try:
        assert post(server.target("http", "127.0.0.1"), BODY, {}) == 302
        assert len(server.seen) == 1
    finally:
        server.close()


def test_only_2xx_delivers_410_stops_and_the_last_attempt_gives_up() -> None:
    settings = replace(Settings(), webhook_max_attempts=3, webhook_retry_base_seconds=10.0)
    assert decide(200, 1, settings) == (DeliveryState.DELIVERED, None)
    assert decide(299, 3, settings) == (DeliveryState.DELIVERED, None)
    assert decide(410, 1, settings) == (DeliveryState.GONE, None)
    for status in (None, 301, 404, 429, 500):
        state, next_at = decide(status, 2, settings)
        assert state == DeliveryState.PENDING and 15 <= next_at - time.time() <= 25
    assert decide(500, 3, settings) == (DeliveryState.ABANDONED, None)


def test_each_attempt_vets_the_url_again_and_sends_nothing_when_it_is_refused() -> None:
    server = Server(204)
    strict = replace(Settings(), webhook_secret=Secret(SECRET))
    try:
        # As if the name had resolved to a public address at submission, and to loopback now (DNS rebinding).
        rebound = Attempt("0" * 32, 1, f"https://localhost:{server.port}/in", BODY)
        status, error = attempt_post(rebound, BODY, strict)
        assert status is None and error.startswith("refused:") and "loopback" in error
        assert server.seen == []
        attempt = Attempt("0" * 32, 1, f"http://127.0.0.1:{server.port}/in", BODY)
        assert attempt_post(attempt, BODY, replace(strict, webhook_allow_private=True)) == (204, "")
        assert Webhook(SECRET).verify(BODY, server.seen[0]) == {"type": "job.succeeded"}
        assert server.seen[0]["webhook-id"] == f"msg_{'0' * 32}"
    finally:
        server.close()
