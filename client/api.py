"""A small client of the prediction service: submit records, follow the job, collect the results."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import quote

import requests
from urllib3.exceptions import MaxRetryError

from client.errors import ClientError, ConnectionFailedError, InputError, JobFailedError, WaitTimeoutError
from client.events import PROGRESS, parse_events
from client.limits import max_rows_in_refusal, max_rows_in_spec
from client.retries import IDEMPOTENCY_KEY, retrying_session, service_retry

Record = Mapping[str, Any]
ProgressCallback = Callable[[int, int], None]

# Said whenever the input goes to the service in more jobs than asked, because of its row limit.
SPLITTING = "the service takes at most %d rows per job; splitting the input"
log = logging.getLogger("client")

# Inputs up to this many rows are sent without asking the service's row limit first: their upload costs
# little, and a 413 still names the limit if a service's is lower.
_ASK_LIMIT_ABOVE_ROWS = 1_000

# The shortest time one status round may take when the service answers without waiting.
_MIN_ROUND_SECONDS = 0.1

# Failures of the transport, not answers of the service.
_TRANSPORT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


# The request header naming where the service POSTs a job's end.
WEBHOOK_URL = "Webhook-Url"

# The upload formats the service reads, by file extension.
UPLOAD_TYPES = {".csv": "text/csv", ".jsonl": "application/x-ndjson", ".json": "application/json"}


@dataclass(frozen=True)
class Shape:
    """How the service shapes each result row: the keys kept, explanations, and the field echoed as `id`."""

    fields: Sequence[str] = ()
    explain: bool = False
    id_field: str | None = None

    def params(self) -> dict[str, str]:
        """Return the query parameters that ask for this shape."""
        params = {"fields": ",".join(self.fields)} if self.fields else {}
        if self.explain:
            params["explain"] = "true"
        if self.id_field is not None:
            params["id_field"] = self.id_field
        return params


@dataclass(frozen=True)
class Submitted:
    """A job the service accepted."""

    task_id: str
    rows: int
    threshold: float
    model_name: str
    model_version: int
    status_url: str


class PredictionClient:
    """Talk to one prediction service; retry 503, 429 and transport failures with exponential backoff.

    `retries` is the number of further attempts after the first; `timeout` bounds each HTTP request.
    Retries are urllib3's (see client.retries): Retry-After is honoured up to `max_delay`, and a
    submission is repeated only because it carries an idempotency key.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = 60,
        retries: int = 5,
        backoff: float = 0.5,
        max_delay: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, retries)
        self._api_key = api_key
        self.session = retrying_session(service_retry(self.retries, backoff, max_delay))

    def __repr__(self) -> str:
        return f"PredictionClient({self.base_url!r})"

    def __enter__(self) -> PredictionClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session and its connections."""
        self.session.close()

    def submit(
        self,
        records: Record | Sequence[Record],
        threshold: float | None = None,
        model: str | None = None,
        shape: Shape | None = None,
        *,
        on_upload: ProgressCallback | None = None,
        webhook_url: str | None = None,
    ) -> Submitted:
        """Submit one record or a list of records as one job, to `model` or the service's default model.

        Each call is one submission with a fresh idempotency key, which its retries repeat: the service
        answers a repeat with the job the first attempt made. `on_upload(bytes_sent, bytes)` follows the upload.
        With `webhook_url`, the service POSTs a signed event there when the job ends (its Webhook-Url header).
        """
        body = _encode(records)
        data = body if on_upload is None else _Upload(io.BytesIO(body), len(body), on_upload)
        return self._submit(data, "application/json", threshold, model, shape, webhook_url)

    def submit_file(
        self,
        path: Path,
        threshold: float | None = None,
        model: str | None = None,
        shape: Shape | None = None,
        *,
        on_upload: ProgressCallback | None = None,
        webhook_url: str | None = None,
    ) -> Submitted:
        """Submit a .csv, .jsonl or .json file as one job, sent as it is: the service parses it, not the client.

        `on_upload(bytes_sent, bytes)` follows the upload; `webhook_url` is as for `submit`.
        """
        content_type = UPLOAD_TYPES.get(path.suffix.lower())
        if content_type is None:
            raise InputError(f"cannot tell the format of {path}: use one of the extensions {', '.join(UPLOAD_TYPES)}")
        try:
            with path.open("rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                data = stream if on_upload is None else _Upload(stream, size, on_upload)
                return self._submit(data, content_type, threshold, model, shape, webhook_url)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc}") from None

    def _submit(
        self, data: Any, content_type: str, threshold: float | None, model: str | None, shape: Shape | None,
        webhook_url: str | None,
    ) -> Submitted:  # fmt: skip
        params = {} if threshold is None else {"threshold": repr(float(threshold))}
        if model is not None:
            params["model"] = model
        params |= (shape or Shape()).params()
        headers = {"Content-Type": content_type, IDEMPOTENCY_KEY: uuid.uuid4().hex}
        if webhook_url is not None:
            headers[WEBHOOK_URL] = webhook_url
        response = self._request("POST", "/predict", data=data, params=params, headers=headers)
        body = response.json()
        return Submitted(
            task_id=body["task_id"],
            rows=int(body["rows"]),
            threshold=float(body["threshold"]),
            model_name=body["model"]["name"],
            model_version=int(body["model"]["version"]),
            status_url=body["status_url"],
        )

    def status(
        self, task_id: str, offset: int | None = None, limit: int | None = None, wait: float | None = None
    ) -> dict[str, Any]:
        """Return the job's status body, with its results (or the page asked for) once it succeeded.

        With `wait` (seconds, at most 30), the service answers as soon as the job ends, or when the wait runs out.
        """
        asked = (("offset", offset), ("limit", limit), ("wait", wait))
        params = {name: value for name, value in asked if value is not None}
        return self._request("GET", _task_path(task_id), params=params).json()

    def cancel(self, task_id: str) -> dict[str, Any]:
        """Cancel a queued or running job; return its status body (failed, with error code job_cancelled)."""
        return self._request("DELETE", _task_path(task_id)).json()

    def wait(
        self,
        task_id: str,
        on_progress: ProgressCallback | None = None,
        poll_interval: float = 1.0,
        timeout: float | None = 900.0,
        page_rows: int = 20_000,
        *,
        events: bool = False,
    ) -> dict[str, Any]:
        """Wait for the job to succeed and return its final body; raise JobFailedError if it fails.

        Each status request waits on the service for up to `poll_interval` seconds and answers as soon
        as the job ends, so the result comes without polling delay and progress is reported each
        interval. Results are read `page_rows` at a time, so no response grows with the size of the job.
        With `events`, progress comes from the job's event stream instead, as each chunk is scored (the
        stream is resumed if it breaks off); a service that cannot stream it is polled as above.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if events and (ended := self._follow(task_id, on_progress, deadline, timeout)) is not None:
            return self._ended(task_id, {**ended, "results": []}, page_rows)
        seen: tuple[int, int] | None = None
        while True:
            asked_at = time.monotonic()
            body = self.status(task_id, limit=page_rows, wait=min(poll_interval, 30.0))
            progress = (int(body["rows_done"]), int(body["rows"]))
            if on_progress is not None and progress != seen:
                on_progress(*progress)
            seen = progress
            if body["status"] in ("succeeded", "failed"):
                return self._ended(task_id, body, page_rows)
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(task_id, body["status"], timeout or 0.0)
            # A service that cannot hold the request (too many waiters, or one without ?wait) answers at
            # once: then pause briefly, so that the loop never spins.
            time.sleep(max(0.0, min(poll_interval, _MIN_ROUND_SECONDS) - (time.monotonic() - asked_at)))

    def follow(
        self,
        task_id: str,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = 900.0,
        *,
        events: bool = False,
    ) -> dict[str, Any]:
        """Wait for the job to succeed without reading its results; return its status, or raise JobFailedError.

        With `events`, progress comes from the job's event stream (see `wait`).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if events and (ended := self._follow(task_id, on_progress, deadline, timeout)) is not None:
            if ended["status"] == "failed":
                error = ended.get("error") or {}
                raise JobFailedError(task_id, error.get("code", "job_failed"), error.get("message", "unknown"))
            return ended
        while True:
            asked_at = time.monotonic()
            body = self.status(task_id, limit=1, wait=1.0)
            if on_progress is not None:
                on_progress(int(body["rows_done"]), int(body["rows"]))
            if body["status"] == "succeeded":
                body.pop("results", None)
                body.pop("page", None)
                return body
            if body["status"] == "failed":
                error = body.get("error") or {}
                raise JobFailedError(task_id, error.get("code", "job_failed"), error.get("message", "unknown"))
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(task_id, body["status"], timeout or 0.0)
            time.sleep(max(0.0, _MIN_ROUND_SECONDS - (time.monotonic() - asked_at)))

    def download(self, task_id: str, stream: BinaryIO, media_type: str = "text/csv") -> int:
        """Write a finished job's results to `stream` as the service streams them (CSV, NDJSON, JSON); return bytes."""
        path = f"{_task_path(task_id)}/results"
        with self._request("GET", path, headers={"Accept": media_type}, stream=True) as response:
            written = 0
            for piece in response.iter_content(chunk_size=256 * 1024):
                stream.write(piece)
                written += len(piece)
        return written

    def _follow(
        self, task_id: str, on_progress: ProgressCallback | None, deadline: float | None, timeout: float | None
    ) -> dict[str, Any] | None:
        """Follow the job's event stream to its final event and return that status; None if it cannot be streamed."""
        last_id: str | None = None
        for _ in range(self.retries + 1):
            headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
            try:
                response = self._request("GET", _task_path(task_id) + "/events", once=True, headers=headers,
                                         stream=True)  # fmt: skip
            except (ClientError, ConnectionFailedError) as exc:
                log.info("no event stream for task %s (%s); polling instead", task_id, exc)
                return None
            with response:
                if response.status_code != 200 or not response.headers.get("Content-Type", "").startswith(
                    "text/event-stream"
                ):
                    return None
                try:
                    for event in parse_events(response.iter_lines(decode_unicode=True)):
                        if deadline is not None and time.monotonic() >= deadline:
                            raise WaitTimeoutError(task_id, "running", timeout or 0.0)
                        if event is None:
                            continue
                        last_id = event.id or last_id
                        if event.final:
                            return dict(event.data)
                        if event.type == PROGRESS and on_progress is not None:
                            on_progress(int(event.data["rows_done"]), int(event.data["rows"]))
                except _TRANSPORT_ERRORS as exc:
                    log.warning("the event stream of task %s broke off (%s); resuming it", task_id, _reason(exc))
        return None

    def _ended(self, task_id: str, body: dict[str, Any], page_rows: int) -> dict[str, Any]:
        if body["status"] == "failed":
            error = body.get("error") or {}
            raise JobFailedError(task_id, error.get("code", "job_failed"), error.get("message", "unknown"))
        return self._read_remaining_pages(task_id, body, page_rows)

    def _read_remaining_pages(self, task_id: str, body: dict[str, Any], page_rows: int) -> dict[str, Any]:
        results = body["results"]
        while len(results) < int(body["rows"]):
            page = self.status(task_id, offset=len(results), limit=page_rows)["results"]
            if not page:  # results shorter than the job: report what there is rather than loop
                break
            results.extend(page)
        body.pop("page", None)
        return body

    def predict(
        self,
        records: Record | Sequence[Record],
        threshold: float | None = None,
        batch_rows: int | None = None,
        on_progress: ProgressCallback | None = None,
        *,
        model: str | None = None,
        shape: Shape | None = None,
        poll_interval: float = 1.0,
        wait_timeout: float | None = 900.0,
        on_upload: ProgressCallback | None = None,
        events: bool = False,
        webhook_url: str | None = None,
    ) -> list[dict[str, Any]]:
        """Score records in jobs of at most `batch_rows` and return every result, `row` counted over the input.

        `on_upload(bytes_sent, bytes)` follows each job's upload; `on_progress(rows_done, rows)` the scoring,
        over the whole input. With `events`, scoring progress comes from each job's event stream (see `wait`).
        With `webhook_url`, each job's end is also POSTed there, as a signed event (see `submit`).

        If it cannot return them (an interrupt, a failed job, a timeout), the jobs still unfinished are
        cancelled, so that the workers do not go on with work nobody will collect.
        """
        rows = [records] if isinstance(records, Mapping) else list(records)
        jobs: list[tuple[int, Submitted]] = []
        collected = 0
        if batch_rows is None and len(rows) > _ASK_LIMIT_ABOVE_ROWS:
            batch_rows = self.row_limit()
            if batch_rows is not None and batch_rows < len(rows):
                log.warning(SPLITTING, batch_rows)
        spans = _spans(len(rows), batch_rows)
        try:
            # Submit every batch first, so that the workers share them, then collect in order.
            index = 0
            while index < len(spans):
                start, stop = spans[index]
                try:
                    submitted = self.submit(
                        rows[start:stop], threshold, model, shape, on_upload=on_upload, webhook_url=webhook_url
                    )
                    jobs.append((start, submitted))
                except ClientError as exc:
                    # Over the service's row limit: split the rest of the input by the limit it names.
                    limit = max_rows_in_refusal(exc)
                    if limit is None or limit >= stop - start:
                        raise
                    log.warning(SPLITTING, limit)
                    spans[index:] = [(start + a, start + b) for a, b in _spans(len(rows) - start, limit)]
                    continue
                index += 1
            progress = _Progress(len(rows), [job.rows for _, job in jobs], on_progress)
            results: list[dict[str, Any]] = []
            for index, (start, job) in enumerate(jobs):
                body = self.wait(job.task_id, progress.callback(index), poll_interval, wait_timeout, events=events)
                progress.finished(index)
                results.extend({**item, "row": start + int(item["row"])} for item in body["results"])
                collected += 1
        except BaseException:
            self._cancel_quietly([job.task_id for _, job in jobs[collected:]])
            raise
        return results

    def row_limit(self) -> int | None:
        """Return the most records the service takes per job, from its OpenAPI document; None if unknown."""
        try:
            return max_rows_in_spec(self._request("GET", "/openapi.json").json())
        except (ClientError, ConnectionFailedError, ValueError):
            return None  # an older service, or none: the 413, if any, names the limit

    def _cancel_quietly(self, task_ids: list[str]) -> None:
        # Best effort, one attempt each: this runs while an error or a Ctrl-C is on its way out.
        for task_id in task_ids:
            with contextlib.suppress(ClientError, ConnectionFailedError):
                self._request("DELETE", _task_path(task_id), once=True)

    def _request(self, method: str, path: str, once: bool = False, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        # requests.request uses a fresh session, whose default adapter makes a single attempt.
        send = requests.request if once else self.session.request
        try:
            response = send(method, self.base_url + path, headers=headers, timeout=self.timeout, **kwargs)
        except _TRANSPORT_ERRORS as exc:
            # urllib3 gives up with MaxRetryError once every attempt allowed has failed.
            exhausted = not once and isinstance(exc.args[0] if exc.args else None, MaxRetryError)
            raise ConnectionFailedError(self.base_url, self.retries + 1 if exhausted else 1, _reason(exc)) from exc
        if response.status_code >= 400:
            raise error_from_response(response)
        return response


def _task_path(task_id: str) -> str:
    return f"/tasks/{quote(task_id, safe='')}"


def error_from_response(response: requests.Response) -> ClientError:
    """Build a ClientError from an error response, whether or not it has the service's JSON shape."""
    try:
        error = response.json()["error"]
        return ClientError(response.status_code, str(error["code"]), str(error["message"]), error.get("details"))
    except (ValueError, KeyError, TypeError, AttributeError):
        text = " ".join(response.text.split())[:200]
        return ClientError(response.status_code, "http_error", text or response.reason or "no message")


class _Progress:
    """Sum the progress of several jobs into one non-decreasing count."""

    def __init__(self, total: int, rows: list[int], on_progress: ProgressCallback | None) -> None:
        self.total = total
        self.rows = rows
        self.done = [0] * len(rows)
        self.reported = -1
        self.on_progress = on_progress

    def callback(self, index: int) -> ProgressCallback | None:
        if self.on_progress is None:
            return None

        def update(rows_done: int, rows: int) -> None:
            self.done[index] = max(self.done[index], rows_done)
            self._report()

        return update

    def finished(self, index: int) -> None:
        self.done[index] = self.rows[index]
        self._report()

    def _report(self) -> None:
        count = sum(self.done)
        if self.on_progress is not None and count > self.reported:
            self.reported = count
            self.on_progress(count, self.total)


def _spans(count: int, batch_rows: int | None) -> list[tuple[int, int]]:
    if batch_rows is not None and batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    if batch_rows is None or count == 0:
        return [(0, count)]  # an empty input still goes to the service, which names the problem
    return [(start, min(start + batch_rows, count)) for start in range(0, count, batch_rows)]


class _Upload(io.RawIOBase):
    """A request body read from `stream` that reports how much of it has been read, i.e. sent.

    It can be rewound (urllib3 seeks back to the start before a retry), and then reports from there.
    """

    def __init__(self, stream: BinaryIO, size: int, on_upload: ProgressCallback) -> None:
        super().__init__()
        self.stream = stream
        self.size = size
        self.on_upload = on_upload

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        piece = self.stream.read(-1 if size is None else size)
        self.on_upload(self.stream.tell(), self.size)
        return piece

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()


def _encode(records: Record | Sequence[Record]) -> bytes:
    payload = records if isinstance(records, Mapping) else list(records)
    try:
        return json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()
    except (ValueError, TypeError) as exc:
        raise InputError(f"the records cannot be sent as JSON: {exc}") from None


def _reason(exc: Exception) -> str:
    # requests wraps urllib3's error, whose reason reads "HTTPConnection(host=..., port=...): what happened".
    inner = exc.args[0] if exc.args else exc
    text = str(getattr(inner, "reason", None) or inner)
    return text.split("): ", 1)[-1] or type(exc).__name__
