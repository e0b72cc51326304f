"""A real HTTP server on 127.0.0.1 that answers from a script, and records what it was asked."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to sleep before answering, to make the client time out


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Callable[[Seen], Reply]


class ScriptedServer:
    """Answer each request with the next reply of the script; the last one repeats once the script runs out."""

    def __init__(self, port: int = 0) -> None:
        self.seen: list[Seen] = []
        self._script: list[Reply | Responder] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self._httpd.handle_error = lambda request, address: None  # a client that timed out hung up; fine
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})

    def script(self, *replies: Reply | Responder) -> None:
        with self._lock:
            self._script = list(replies)

    def paths(self) -> list[str]:
        return [f"{seen.method} {seen.path}" for seen in self.seen]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def _answer(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            step = self._script.pop(0) if len(self._script) > 1 else self._script[0]
        return step(seen) if callable(step) else step

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def do_DELETE(self) -> None:
                self._serve()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                reply = server._answer(Seen(self.command, self.path, dict(self.headers), body))
                if reply.delay:
                    time.sleep(reply.delay)
                if isinstance(reply.body, bytes | str):
                    payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
                    content_type = "text/html"
                else:
                    payload = json.dumps(reply.body).encode()
                    content_type = "application/json"
                self.send_response(reply.status)
                headers = {"Content-Type": content_type, **reply.headers}
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def error(status: int, code: str, message: str, details: Any = None, **headers: str) -> Reply:
    """Return a reply in the service's error shape."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return Reply(status, {"error": body}, {name.replace("_", "-"): value for name, value in headers.items()})


def accepted(task_id: str = "a" * 32, rows: int = 1, threshold: float = 0.712) -> Reply:
    """Return the service's 202 for a new job."""
    body = {
        "task_id": task_id,
        "status": "queued",
        "rows": rows,
        "model": {"name": "glm26", "version": 1},
        "threshold": threshold,
        "status_url": f"/tasks/{task_id}",
    }
    return Reply(202, body, {"Location": f"/tasks/{task_id}"})


def status(state: str, rows_done: int, rows: int = 10, **extra: Any) -> Reply:
    """Return a 200 of GET /tasks/{id}."""
    body = {"task_id": "a" * 32, "status": state, "rows": rows, "rows_done": rows_done,
            "model": {"name": "glm26", "version": 1}, "threshold": 0.712, "submitted_at": "t0", **extra}  # fmt: skip
    return Reply(200, body)


class MiniService:
    """Just enough of the service's protocol to answer several jobs, results paged: each record's `v` is its phat."""

    def __init__(self, failing: str = "") -> None:
        self.jobs: dict[str, list[dict[str, Any]]] = {}
        self.ids = (f"{n:032x}" for n in itertools.count(1))
        self.failing = failing
        self.cancelled: list[str] = []

    def __call__(self, seen: Seen) -> Reply:
        if seen.method == "POST":
            task_id = next(self.ids)
            self.jobs[task_id] = seen.json()
            return accepted(task_id, rows=len(self.jobs[task_id]))
        url = urlsplit(seen.path)
        task_id = url.path.removesuffix("/events").rsplit("/", 1)[1]
        records = self.jobs[task_id]
        if seen.method == "DELETE":
            self.cancelled.append(task_id)
            return status("failed", 0, rows=len(records), error={"code": "job_cancelled", "message": "cancelled"})
        if task_id == self.failing:
            ended = status("failed", 0, rows=len(records), error={"code": "job_failed", "message": "chunk 0 lost"})
        else:
            ended = status("succeeded", len(records), rows=len(records))
        if url.path.endswith("/events"):  # the job's events: it has been scored whole, in one chunk
            progress = {"rows_done": ended.body["rows_done"], "rows": len(records)}
            text = f"id: 1-0\nevent: progress\ndata: {json.dumps(progress)}\n\n" if ended.body["rows_done"] else ""
            text += f"id: 2-0\nevent: {ended.body['status']}\ndata: {json.dumps(ended.body)}\n\n"
            return Reply(200, text, {"Content-Type": "text/event-stream"})
        if task_id == self.failing:
            return ended
        phats = [float(record["v"]) for record in records]  # a number, or a string of one as read from a CSV
        results = [{"business_outcome": int(phat >= 0.5), "phat": phat, "row": i} for i, phat in enumerate(phats)]
        # ?wait= is for the real service to hold the request; the jobs here have always ended.
        query = {name: int(values[0]) for name, values in parse_qs(url.query).items() if name != "wait"}
        offset, limit = query.get("offset", 0), query.get("limit", len(records))
        page = {"page": {"offset": offset, "limit": limit, "next": None}} if query else {}
        return status("succeeded", len(records), rows=len(records), results=results[offset : offset + limit], **page)
