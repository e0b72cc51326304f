"""The job contract that the API and the workers both stand on.

`keys` names every Redis key, `record` is the typed job record and its states, `store` holds the
Redis operations (with the Lua scripts beside it in `scripts/`), and `broker` the Celery app, queue
and task names; `webhooks` and `targets` are the webhook deliveries and their vetted URLs. Nothing
here imports `api` or `worker`.
"""

from jobs.record import Job, JobStatus, NewJob
from jobs.store import JobStore

__all__ = ["Job", "JobStatus", "JobStore", "NewJob"]
