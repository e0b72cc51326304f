"""Endpoints: POST /predict, GET and DELETE /tasks/<id>, GET /health, GET /ready, GET /openapi.json."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from flask import Blueprint, Response, jsonify, request, url_for

from api.batches import parse_batch, parse_model_name, parse_page, parse_threshold
from api.errors import ApiError
from api.openapi import build_spec
from api.services import services
from api.waiting import parse_wait
from jobs import Job, JobStatus, NewJob
from jobs.broker import submit

bp = Blueprint("predictions", __name__)
_TASK_ID = re.compile(r"[0-9a-f]{32}")
CANCELLED = "job_cancelled"


@bp.post("/predict")
def predict() -> Response | tuple[Response, int, dict[str, str]]:
    """Accept one record or a batch, store it, enqueue its chunks and answer 202 at once.

    With `wait`, answer 200 with the finished job (as GET /tasks/<id> would) if it ends within the wait.
    """
    svc = services()
    model = svc.serving_model(parse_model_name(request.args.get("model")))
    wait = parse_wait(request.args.get("wait"))
    records = parse_batch(request, model.input_fields, svc.settings.max_batch_rows, svc.settings.max_body_bytes)
    override = parse_threshold(request.args.get("threshold"))
    threshold = model.threshold if override is None else override
    job = NewJob(
        rows=len(records),
        chunk_rows=svc.settings.chunk_rows,
        model_name=model.name,
        model_version=model.version,
        threshold=threshold,
        owner=request.environ.get("glmq.owner", ""),
    )
    job_id = submit(svc.celery, svc.jobs, job, records, svc.settings.small_job_rows)
    if wait is not None and svc.waiters.wait(svc.jobs, job_id, wait) and (ended := svc.jobs.get(job_id)):
        return _task_response(ended, None)
    status_url = url_for("predictions.task", task_id=job_id)
    body = {
        "task_id": job_id,
        "status": JobStatus.QUEUED.value,
        "rows": job.rows,
        "model": {"name": model.name, "version": model.version},
        "threshold": threshold,
        "status_url": status_url,
    }
    return jsonify(body), 202, {"Location": status_url}


@bp.get("/tasks/<task_id>")
def task(task_id: str) -> Response:
    """Report a job's status, with its results in input order once it succeeded (a page of them if asked).

    With `wait`, answer as soon as the job has ended, or when the wait runs out.
    """
    svc = services()
    page = parse_page(request.args.get("offset"), request.args.get("limit"))
    wait = parse_wait(request.args.get("wait"))
    job = _own_job(task_id)
    if wait is not None and not job.status.terminal and svc.waiters.wait(svc.jobs, task_id, wait):
        job = _own_job(task_id)
    return _task_response(job, page)


def _task_response(job: Job, page: tuple[int, int | None] | None) -> Response:
    body = _status(job)
    if job.status != JobStatus.SUCCEEDED:
        return Response(msgspec.json.encode(body), status=200, mimetype="application/json")

    rows = job.rows
    offset, limit = page or (0, None)
    stop = rows if limit is None else min(rows, offset + limit)
    results = services().jobs.results(job.id, rows, job.chunk_rows, range(offset, stop))
    if results is None:
        raise ApiError(404, "task_not_found", "The task's results have expired.", {"task_id": job.id})
    if page is not None:
        more = limit is not None and stop < rows
        following = url_for("predictions.task", task_id=job.id, offset=stop, limit=limit) if more else None
        body["page"] = {"offset": offset, "limit": limit, "next": following}
    # The results are already JSON as the workers stored them: splice them in rather than parse them.
    head = msgspec.json.encode(body)
    return Response(head[:-1] + b',"results":' + results + b"}", status=200, mimetype="application/json")


@bp.delete("/tasks/<task_id>")
def cancel(task_id: str) -> Response:
    """Cancel a queued or running job: no further chunk of it runs, and its payload is dropped."""
    jobs = services().jobs
    job = _own_job(task_id)
    cancelled = jobs.fail(task_id, "cancelled by the client", code=CANCELLED)
    job = jobs.get(task_id) or job
    if not cancelled and job.error_code != CANCELLED:
        raise ApiError(409, "task_finished", f"The task has already {job.status}.", {"task_id": task_id})
    return Response(msgspec.json.encode(_status(job)), status=200, mimetype="application/json")


def _own_job(task_id: str) -> Job:
    job = services().jobs.get(task_id) if _TASK_ID.fullmatch(task_id) else None
    if job is None or job.owner != request.environ.get("glmq.owner", ""):
        raise ApiError(404, "task_not_found", "No such task; it may have expired.", {"task_id": task_id})
    return job


def _status(job: Job) -> dict[str, Any]:
    body: dict[str, Any] = {
        "task_id": job.id,
        "status": job.status.value,
        "rows": job.rows,
        "rows_done": job.rows_done,
        "model": {"name": job.model_name, "version": job.model_version},
        "threshold": job.threshold,
        "submitted_at": job.submitted_at,
    }
    if job.finished_at is not None:
        body["finished_at"] = job.finished_at
    if job.status == JobStatus.FAILED:
        body["error"] = {"code": job.error_code or "job_failed", "message": job.error or "unknown"}
    return body


@bp.get("/openapi.json")
def openapi() -> Response:
    """Describe the API, with the serving model's input fields when one serves."""
    svc = services()
    try:
        fields = svc.serving_model().input_fields
    except ApiError:
        fields = ()
    return jsonify(build_spec(svc.settings, fields))


@bp.get("/health")
def health() -> Response:
    """Answer that the process is up."""
    return jsonify(status="ok")


@bp.get("/ready")
def ready() -> Response:
    """Answer whether a job would be accepted now: Redis answers and a model is served (503 if not)."""
    svc = services()
    svc.redis.ping()
    model = svc.serving_model()
    return jsonify(status="ready", model={"name": model.name, "version": model.version})
