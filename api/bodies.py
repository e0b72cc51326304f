"""Oversized request bodies: answered with the JSON 413 only after the excess is read and dropped.

A server that answers before reading the body, and then closes, makes the kernel reset the
connection while the client is still sending: the client sees a broken pipe, not the 413. So the
rest of an oversized body is read and thrown away, for up to DRAIN_SECONDS. Drained, the
connection stays open for the client's next request. A client still sending after that is cut off
gracefully: the write side is shut after the 413, so what was sent reaches the client before the
connection closes.
"""

from __future__ import annotations

import contextlib
import socket
import time
from typing import Any

from flask import Flask, Response, g, request

from api.errors import ApiError

DRAIN_SECONDS = 10.0
_PIECE = 64 * 1024


def drain(environ: dict[str, Any], seconds: float = DRAIN_SECONDS) -> bool:
    """Read and drop the rest of the request body; return whether it ended within `seconds`."""
    stream = environ["wsgi.input"]
    sock = environ.get("gunicorn.socket")
    deadline = time.monotonic() + seconds
    previous = sock.gettimeout() if sock is not None else None
    try:
        while (left := deadline - time.monotonic()) > 0:
            if sock is not None:
                sock.settimeout(left)  # a client that stops sending must not hold this thread
            if not stream.read(_PIECE):
                return True
        return False
    except (OSError, ValueError):  # a timeout, a reset, or a chunked body that breaks off
        return False
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(previous)


def refuse(max_bytes: int) -> ApiError:
    """Drain the body of the current request and return its 413; the connection closes if the drain gave up."""
    if not drain(request.environ):
        g.close_connection = True
    return ApiError(413, "body_too_large", f"The body exceeds {max_bytes} bytes.", {"max_bytes": max_bytes})


def init_app(app: Flask) -> None:
    """Refuse a declared oversized body of any request before anything else reads it."""
    max_bytes = app.config["MAX_CONTENT_LENGTH"]

    @app.before_request
    def refuse_declared_excess() -> None:
        if request.content_length is not None and request.content_length > max_bytes:
            raise refuse(max_bytes)

    @app.after_request
    def close_undrained(response: Response) -> Response:
        sock = request.environ.get("gunicorn.socket")
        if g.get("close_connection") and sock is not None:
            response.call_on_close(lambda: _shut_write(sock))
        return response


def _shut_write(sock: socket.socket) -> None:
    # Runs once the answer is sent: the FIN follows it, and gunicorn, finding the body unread,
    # closes the connection without taking another request from it.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
