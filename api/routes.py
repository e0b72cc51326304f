"""The prediction endpoints, behind the API key guard: POST /predict, GET and DELETE /tasks/<id>, GET /models."""

from __future__ import annotations

from flask import Blueprint, Response, g, request, url_for

from api import auth, idempotency
from api.auth import own_job
from api.batches import parse_batch, parse_model_name, parse_page, parse_strict, parse_threshold, parse_version
from api.downloads import ResultFormat, etag, stream
from api.errors import ApiError
from api.idempotency import Claim
from api.ids import parse_id_field
from api.params import takes
from api.results import Columns, parse_explain, parse_fields
from api.schemas import Accepted, Models, Page, ResultRow, Task, respond, respond_with_results
from api.services import services
from api.waiting import parse_wait
from api.webhooks import HEADER as WEBHOOK_HEADER
from api.webhooks import parse_webhook_url
from jobs import Job, JobStatus, NewJob
from jobs.broker import submit

bp = Blueprint("predictions", __name__)
bp.before_request(auth.guard)
CANCELLED = "job_cancelled"


@bp.post("/predict")
@takes("model", "version", "threshold", "strict", "wait", "id_field", "fields", "explain")
def predict() -> Response:
    """Accept one record or a batch (JSON, CSV or NDJSON), store it, enqueue its chunks and answer 202 at once.

    With `wait`, answer 200 with the finished job (as GET /tasks/<id> would) if it ends within the wait.
    With an Idempotency-Key, a repeat of a submission answers with the job the first one made.
    """
    svc = services()
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    model = svc.serving_model(parse_model_name(request.args.get("model")), parse_version(request.args.get("version")))
    wait = parse_wait(request.args.get("wait"))
    strict = parse_strict(request.args.get("strict"))
    explain = parse_explain(request.args.get("explain"), model.linear, model.name)
    fields = parse_fields(request.args.get("fields"), model.variables)
    id_field = parse_id_field(request.args.get("id_field"))
    settings = svc.settings
    webhook_url = parse_webhook_url(request.headers.get(WEBHOOK_HEADER), settings)
    batch = parse_batch(
        request, model.input_fields, settings.max_batch_rows, settings.max_body_bytes, strict,
        settings.max_field_chars, id_field, digest=key is not None,
    )  # fmt: skip
    records, unknown = batch.records, batch.unknown
    override = parse_threshold(request.args.get("threshold"))
    threshold = model.threshold if override is None else override
    job = NewJob(
        rows=len(records),
        chunk_rows=svc.settings.chunk_rows,
        model_name=model.name,
        model_version=model.version,
        threshold=threshold,
        owner=g.owner,
        strict=strict,
        unknown_fields=unknown.names,
        unknown_field_count=unknown.count,
        webhook_url=webhook_url,
        base_url=request.host_url if webhook_url else "",
        id_field=id_field,
        fields=fields,
        explain=explain,
    )
    claim, earlier = _claim(key, batch.digest) if key is not None else (None, None)
    if earlier is not None:
        return _accepted(earlier.id, earlier, wait, {idempotency.REPLAYED: "true"})
    try:
        job_id = submit(svc.celery, svc.jobs, job, records, svc.settings.small_job_rows)
    except BaseException:
        if claim is not None:
            svc.idempotency.release(claim)
        raise
    if claim is not None:
        svc.idempotency.record(claim, job_id)
    return _accepted(job_id, job, wait, {})


def _claim(key: str, digest: str) -> tuple[Claim, Job | None]:
    """Claim an idempotency key for this submission; return the claim, and the job of an earlier one."""
    svc = services()
    fingerprint = idempotency.fingerprint(digest, request.args)
    while True:
        claim, earlier = svc.idempotency.claim(auth.caller(g.owner), key, fingerprint)
        if earlier is None:
            return claim, None
        if (job := svc.jobs.get(earlier)) is not None:
            return claim, job
        svc.idempotency.release(claim)  # its job expired before the claim: the submission is new again


def _accepted(job_id: str, job: NewJob | Job, wait: float | None, headers: dict[str, str]) -> Response:
    svc = services()
    if wait is not None and svc.waiters.wait(svc.jobs, job_id, wait) and (ended := svc.jobs.get(job_id)):
        response = _task_response(ended, None)
        response.headers.update(headers)
        return response
    status_url = url_for("predictions.task", task_id=job_id)
    return respond(Accepted.of(job_id, job, status_url), 202, {"Location": status_url, **headers})


@bp.get("/tasks/<task_id>")
@takes("offset", "limit", "wait")
def task(task_id: str) -> Response:
    """Report a job's status, with its results in input order once it succeeded (a page of them if asked).

    With `wait`, answer as soon as the job has ended, or when the wait runs out.
    """
    svc = services()
    page = parse_page(request.args.get("offset"), request.args.get("limit"))
    wait = parse_wait(request.args.get("wait"))
    job = own_job(task_id)
    if wait is not None and not job.status.terminal and svc.waiters.wait(svc.jobs, task_id, wait):
        job = own_job(task_id)
    return _task_response(job, page)


def _task_response(job: Job, page: tuple[int, int | None] | None) -> Response:
    cancelled = _cancelled(job)
    delivery = services().webhooks.get(job.id) if job.webhook_url else None
    if job.status != JobStatus.SUCCEEDED and not cancelled:
        return respond(Task.from_job(job, delivery=delivery))
    rows = job.rows
    offset, limit = page or (0, None)
    stop = rows if limit is None else min(rows, offset + limit)
    unscored = ResultRow.cancelled if cancelled else None
    results = services().jobs.results(job.id, rows, job.chunk_rows, range(offset, stop), unscored)
    if results is None:
        raise ApiError(404, "task_not_found", "The task's results have expired.", {"task_id": job.id})
    if page is None:
        return respond_with_results(Task.from_job(job, delivery=delivery), results)
    more = limit is not None and stop < rows
    following = url_for("predictions.task", task_id=job.id, offset=stop, limit=limit) if more else None
    return respond_with_results(Task.from_job(job, Page(offset, limit, following), delivery), results)


@bp.get("/tasks/<task_id>/results")
@takes()
def results(task_id: str) -> Response:
    """Stream a finished job's results as JSON, NDJSON or CSV (by Accept), one stored chunk at a time.

    A cancelled job's are those GET /tasks/<id> gives: its scored chunks, and a `cancelled` row for each other row.
    """
    svc = services()
    job = own_job(task_id)
    kind = _result_format()
    status_url = url_for("predictions.task", task_id=job.id)
    cancelled = _cancelled(job)
    if job.status != JobStatus.SUCCEEDED and not cancelled:
        code, why = ("task_failed", "failed") if job.status == JobStatus.FAILED else ("task_unfinished", "not finished")
        details = {"task_id": job.id, "status": job.status.value, "status_url": status_url}
        raise ApiError(409, code, f"The task has {why}; its results are not available.", details)
    tag = etag(job, kind)
    if request.if_none_match.contains_weak(tag):
        response = Response(status=304)
        response.set_etag(tag)
        return response
    if not cancelled and not svc.jobs.has_results(job.id, job.chunks):
        raise ApiError(404, "task_not_found", "The task's results have expired.", {"task_id": job.id})
    variables = svc.serving_model(job.model_name, job.model_version).variables
    columns = Columns.of(variables, job.fields, job.explain, job.id_field is not None)
    unscored = ResultRow.cancelled if cancelled else None
    response = Response(stream(svc.jobs, job, kind, columns, unscored), content_type=kind.content_type)
    response.set_etag(tag)
    return response


def _cancelled(job: Job) -> bool:
    # A cancelled job keeps the chunks scored before the cancel; each of its other rows says it was cancelled.
    return job.status == JobStatus.FAILED and job.error_code == CANCELLED


def _result_format() -> ResultFormat:
    offered = [kind.value for kind in ResultFormat]
    chosen = request.accept_mimetypes.best_match(offered) if request.accept_mimetypes else ResultFormat.JSON.value
    if chosen is None:
        raise ApiError(406, "not_acceptable", f"Results come as {', '.join(offered)}.", {"accepted": offered})
    return ResultFormat(chosen)


@bp.delete("/tasks/<task_id>")
def cancel(task_id: str) -> Response:
    """Cancel a queued or running job: no further chunk of it runs, and its payload is dropped.

    The results of the chunks already recorded are kept (GET /tasks/<id> returns them).
    """
    jobs = services().jobs
    job = own_job(task_id)
    cancelled = jobs.fail(task_id, "cancelled by the client", code=CANCELLED)
    job = jobs.get(task_id) or job
    if not cancelled and job.error_code != CANCELLED:
        raise ApiError(409, "task_finished", f"The task has already {job.status}.", {"task_id": task_id})
    return respond(Task.from_job(job))


@bp.get("/models")
def models() -> Response:
    """List every model of the store: its versions, the serving one, and each version's fields and metrics."""
    return respond(Models.of(services().catalog()))
