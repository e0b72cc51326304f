"""gunicorn's own error answers in the API's JSON error shape.

gunicorn answers some requests without the app: a request line over 4 KiB (414), too many or too
large headers (431), a malformed request line, header or chunk (400). It writes them as HTML,
through `gunicorn.util.write_error`, and offers no setting for their format, so each worker process
replaces that one function (gunicorn.conf.py, `post_worker_init`). tests/faults/test_server.py
holds this to the pinned gunicorn. What stays outside the shape: a connection gunicorn drops
without an answer (a client that sends nothing, a worker killed for its timeout).
"""

from __future__ import annotations

import socket

import msgspec
from gunicorn import util

from api.errors import HTTP_CODES
from api.schemas import Error, ErrorBody


def write_json_error(sock: socket.socket, status: int, reason: str, message: str) -> None:
    """Write gunicorn's error answer as {"error": {"code", "message"}} and close the exchange."""
    # `message` quotes what the client sent (the request line, a header); the reason is enough.
    body = msgspec.json.encode(Error(ErrorBody(HTTP_CODES.get(status, "http_error"), f"{reason}.")))
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    """Make this process's gunicorn write its own errors as JSON."""
    util.write_error = write_json_error
