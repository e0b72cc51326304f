"""The job record: one typed shape, read from and written to a Redis hash in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import msgspec


class JobStatus(StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED)


def now_iso() -> str:
    """Return the current UTC time as ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ModelRef(msgspec.Struct):
    """A model version in the store."""

    name: str
    version: int


@dataclass(frozen=True)
class NewJob:
    """What the API knows when it accepts a batch."""

    rows: int
    chunk_rows: int
    model_name: str
    model_version: int
    threshold: float
    owner: str = ""
    strict: bool = False
    unknown_fields: tuple[str, ...] = ()
    unknown_field_count: int = 0
    # Where the job's end is announced (jobs.webhooks), and the API's base URL for its absolute status_url.
    webhook_url: str = ""
    base_url: str = ""
    # How result rows are shaped (api.results): the id field echoed, the keys kept, contributions added.
    id_field: str | None = None
    fields: tuple[str, ...] = ()
    explain: bool = False

    @property
    def chunks(self) -> int:
        return -(-self.rows // self.chunk_rows)


class Job(msgspec.Struct, kw_only=True, frozen=True):
    """A job as stored: its hash fields, typed. `id` is the key's, not a field of the hash."""

    id: str
    status: JobStatus
    rows: int
    chunks: int
    chunk_rows: int
    rows_done: int = 0
    model_name: str
    model_version: int
    threshold: float
    owner: str = ""
    submitted_at: str
    started_at: str | None = None
    finished_at: str | None = None
    heartbeat: float = 0.0
    error: str | None = None
    error_code: str | None = None
    # Row errors for fields the model does not read (?strict=true); either way, the names the API saw.
    strict: bool = False
    unknown_fields: tuple[str, ...] = ()
    unknown_field_count: int = 0
    webhook_url: str | None = None
    base_url: str | None = None
    id_field: str | None = None
    fields: tuple[str, ...] = ()
    explain: bool = False

    @classmethod
    def accepted(cls, job_id: str, new: NewJob, now: float) -> Job:
        """Return the record of a job the API has just accepted."""
        return cls(
            id=job_id,
            status=JobStatus.QUEUED,
            rows=new.rows,
            chunks=new.chunks,
            chunk_rows=new.chunk_rows,
            model_name=new.model_name,
            model_version=new.model_version,
            threshold=new.threshold,
            owner=new.owner,
            strict=new.strict,
            unknown_fields=new.unknown_fields,
            unknown_field_count=new.unknown_field_count,
            webhook_url=new.webhook_url or None,
            base_url=new.base_url or None,
            id_field=new.id_field,
            fields=new.fields,
            explain=new.explain,
            submitted_at=now_iso(),
            heartbeat=now,
        )

    @classmethod
    def from_hash(cls, job_id: str, fields: Mapping[bytes, bytes]) -> Job | None:
        """Return the record read from a Redis hash (HGETALL), or None when the hash is empty."""
        if not fields:
            return None
        strings: dict[str, object] = {k.decode(): v.decode() for k, v in fields.items()}
        strings["id"] = job_id
        for name in ("unknown_fields", "fields"):
            if name in strings:
                strings[name] = msgspec.json.decode(str(strings[name]))
        return msgspec.convert(strings, cls, strict=False)

    def to_hash(self) -> dict[str, str]:
        """Return the hash fields to write: every set field as a string, `id` left out."""
        fields = msgspec.to_builtins(self)
        del fields["id"]
        return {name: _text(value) for name, value in fields.items() if value is not None}


def _text(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):  # field names may hold any character: JSON keeps them apart
        return msgspec.json.encode(value).decode()
    return str(value)
