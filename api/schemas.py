"""The HTTP shapes, each defined once: the routes answer with them and the OpenAPI document is generated from them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from flask import Response
from msgspec import UNSET, UnsetType

from api.fields import MAX_NAMES
from jobs import Job, JobStatus, NewJob
from jobs.record import ModelRef
from jobs.webhooks import Delivery, DeliveryState

Code = Annotated[str, msgspec.Meta(pattern="^[a-z_]+$", description="Stable, for programs to act on.")]


class ErrorBody(msgspec.Struct, omit_defaults=True):
    """What went wrong: a stable code, a message for people, and details when there are any."""

    code: Code
    message: str
    details: Any | UnsetType = UNSET


class Error(msgspec.Struct):
    """The one error shape of every failed request."""

    error: ErrorBody


class Accepted(msgspec.Struct):
    """A batch accepted and queued: poll `status_url` (also the Location header)."""

    task_id: str
    status: Literal["queued"]
    rows: Annotated[int, msgspec.Meta(ge=1)]
    model: ModelRef
    threshold: float
    status_url: str
    warnings: list[FieldWarning] | UnsetType = UNSET

    @classmethod
    def of(cls, task_id: str, job: NewJob | Job, status_url: str) -> Accepted:
        """Return the answer to the submission of a job (a new one, or the stored one an Idempotency-Key names)."""
        return cls(
            task_id=task_id,
            status="queued",
            rows=job.rows,
            model=ModelRef(job.model_name, job.model_version),
            threshold=job.threshold,
            status_url=status_url,
            warnings=FieldWarning.unknown(job.unknown_fields, job.unknown_field_count, job.strict) or UNSET,
        )


class RowError(msgspec.Struct, omit_defaults=True):
    """Why one row could not be scored: the field at fault, and a `code` when the row's fields are at fault.

    `no_model_fields`: the row holds none of the model's input fields (listed in `fields`).
    `unknown_field`: with ?strict=true, the row holds a field the model does not read.
    `cancelled`: the job was cancelled before this row's chunk was scored.
    """

    message: str
    field: str | UnsetType = UNSET
    code: Literal["no_model_fields", "unknown_field", "cancelled"] | UnsetType = UNSET
    fields: list[str] | UnsetType = UNSET


class FieldWarning(msgspec.Struct):
    """Field names the request held that the model does not read: ignored, or row errors with ?strict=true.

    Without strict, the names come from the rows in the body's first 256 KiB (at least one row).
    """

    code: Literal["unknown_fields"]
    message: str
    fields: Annotated[list[str], msgspec.Meta(max_length=MAX_NAMES, description="The first ones seen.")]
    count: Annotated[int, msgspec.Meta(ge=1, description="How many distinct names in all.")]

    @classmethod
    def unknown(cls, fields: Sequence[str], count: int, strict: bool) -> list[FieldWarning]:
        """Return the warning about fields the model does not read, or none when there were none."""
        if not count:
            return []
        fate = "each row holding one is an error (strict)" if strict else "they were ignored"
        message = f"{count} field name(s) the model does not read: {', '.join(fields)}; {fate}."
        return [cls("unknown_fields", message, list(fields), count)]


class ResultRow(msgspec.Struct, omit_defaults=True):
    """One row's result, in input order: scored, with every model variable as the model saw it, or its error.

    Keys are sorted. `id` is there when the job was sent with ?id_field=, `contributions` and
    `intercept` with ?explain=true; ?fields= keeps only the keys it names, and `row` and `id`.
    """

    row: int
    business_outcome: Literal[0, 1] | UnsetType = UNSET
    phat: float | UnsetType = UNSET
    error: RowError | UnsetType = UNSET
    id: Annotated[
        Any, msgspec.Meta(description="The raw value of the id field (?id_field=); null when the row had none.")
    ] = UNSET
    contributions: (
        Annotated[
            dict[str, float],
            msgspec.Meta(description="Each model variable's coefficient times its model input (?explain=true)."),
        ]
        | UnsetType
    ) = UNSET
    intercept: (
        Annotated[float, msgspec.Meta(description="intercept + sum(contributions) = logit(phat) (?explain=true).")]
        | UnsetType
    ) = UNSET

    @staticmethod
    def cancelled(row: int) -> bytes:
        """Return the JSON of a row that a cancelled job never scored."""
        return msgspec.json.encode(ResultRow(row, error=_CANCELLED_ROW))


_CANCELLED_ROW = RowError("The job was cancelled before this row was scored.", code="cancelled")


class Progress(msgspec.Struct):
    """The data of a `progress` event of GET /tasks/<id>/events: rows of the job's recorded chunks, of all its rows."""

    rows_done: int
    rows: int


class Page(msgspec.Struct):
    """Which results a paged answer holds; `next` is the following page's URL, null on the last."""

    offset: int
    limit: int | None
    next: str | None


class WebhookDelivery(msgspec.Struct, omit_defaults=True):
    """How the job's webhook event (the Webhook-Url it was submitted with) is being delivered.

    `pending` until the job ends and while retries are ahead (`next_attempt_at`); then `delivered` (a 2xx
    answer), `gone` (the receiver answered 410) or `abandoned` (every attempt failed).
    """

    url: str
    state: DeliveryState
    attempts: int
    last_status: int | UnsetType = UNSET
    last_error: str | UnsetType = UNSET
    delivered_at: str | UnsetType = UNSET
    next_attempt_at: str | UnsetType = UNSET

    @classmethod
    def of(cls, url: str, delivery: Delivery | None) -> WebhookDelivery:
        """Return the delivery state of a job's webhook (no record yet: pending, no attempt)."""
        delivery = delivery or Delivery()
        following = delivery.next_at
        return cls(
            url=url,
            state=delivery.state,
            attempts=delivery.attempts,
            last_status=UNSET if delivery.last_status is None else delivery.last_status,
            last_error=delivery.last_error or UNSET,
            delivered_at=delivery.delivered_at or UNSET,
            next_attempt_at=UNSET
            if following is None
            else datetime.fromtimestamp(following, UTC).isoformat(timespec="milliseconds"),
        )


class Task(msgspec.Struct, omit_defaults=True):
    """A job's status; `results` once it succeeded or was cancelled, and `page` when offset or limit was asked for.

    `rows_done` counts the rows of the chunks scored: of a cancelled job, those whose results it kept.
    """

    task_id: str
    status: JobStatus
    rows: int
    rows_done: int
    model: ModelRef
    threshold: float
    submitted_at: str
    finished_at: str | UnsetType = UNSET
    error: ErrorBody | UnsetType = UNSET
    warnings: list[FieldWarning] | UnsetType = UNSET
    webhook: WebhookDelivery | UnsetType = UNSET
    page: Page | UnsetType = UNSET
    results: list[ResultRow] | UnsetType = UNSET

    @classmethod
    def from_job(cls, job: Job, page: Page | UnsetType = UNSET, delivery: Delivery | None = None) -> Task:
        """Return the status of a stored job (results are spliced in by the caller, see `respond_with_results`)."""
        failed = job.status == JobStatus.FAILED
        warnings = FieldWarning.unknown(job.unknown_fields, job.unknown_field_count, job.strict)
        return cls(
            task_id=job.id,
            status=job.status,
            rows=job.rows,
            rows_done=job.rows_done,
            model=ModelRef(job.model_name, job.model_version),
            threshold=job.threshold,
            submitted_at=job.submitted_at,
            finished_at=UNSET if job.finished_at is None else job.finished_at,
            error=ErrorBody(job.error_code or "job_failed", job.error or "unknown") if failed else UNSET,
            warnings=warnings or UNSET,
            webhook=WebhookDelivery.of(job.webhook_url, delivery) if job.webhook_url else UNSET,
            page=page,
        )


class ModelVersion(msgspec.Struct):
    """One stored version of a model, as its manifest describes it."""

    version: int
    input_fields: list[str]
    threshold: float
    metrics: dict[str, Any]
    created_at: str | None

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> ModelVersion:
        """Return the description of a version from its manifest."""
        return cls(
            version=int(manifest["version"]),
            input_fields=list(manifest["input_fields"]),
            threshold=float(manifest["threshold"]),
            metrics=dict(manifest.get("metrics", {})),
            created_at=manifest.get("created_at"),
        )


class ModelInfo(msgspec.Struct):
    """A model of the store: every stored version, oldest first, and the one serving (`?model=` without `?version=`)."""

    name: str
    serving: int | None
    versions: list[ModelVersion]


class Models(msgspec.Struct):
    """Every model of the store."""

    models: list[ModelInfo]

    @classmethod
    def of(cls, catalog: Sequence[tuple[str, int | None, Sequence[dict[str, Any]]]]) -> Models:
        """Return the models of a catalog: (name, serving version, manifests of its versions)."""
        return cls(
            [ModelInfo(name, serving, [ModelVersion.of(m) for m in manifests]) for name, serving, manifests in catalog]
        )


class Health(msgspec.Struct):
    """The process is up."""

    status: Literal["ok"]


class Ready(msgspec.Struct):
    """A job would be accepted now: Redis answers and this model version serves.

    `workers` is how many worker processes renewed their heartbeat within a lease; with none, the
    status is `no_workers`: jobs are still accepted and wait in the queue, but nothing scores them.
    """

    status: Literal["ready", "no_workers"]
    model: ModelRef
    workers: int


RESPONSES = (Accepted, Task, Progress, Models, Error, Health, Ready, ResultRow)


def respond(body: msgspec.Struct, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Return a JSON response of one of the shapes above."""
    return Response(msgspec.json.encode(body), status=status, headers=headers, mimetype="application/json")


def respond_with_results(task: Task, results: bytes) -> Response:
    """Return a task's status with its results, stored as JSON by the workers, spliced in unparsed."""
    head = msgspec.json.encode(task)
    return Response(head[:-1] + b',"results":' + results + b"}", mimetype="application/json")
