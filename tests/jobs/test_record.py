from jobs import Job, JobStatus, NewJob


def test_a_record_round_trips_through_its_hash_fields() -> None:
    new = NewJob(rows=7, chunk_rows=3, model_name="glm26", model_version=2, threshold=0.1 + 0.2, owner="abc")
    job = Job.accepted("f" * 32, new, now=1234.5)
    fields = job.to_hash()
    assert "id" not in fields and "error" not in fields
    assert fields["threshold"] == repr(0.1 + 0.2)  # no precision lost on the way through Redis
    read = Job.from_hash("f" * 32, {k.encode(): v.encode() for k, v in fields.items()})
    assert read == job
    assert (read.chunks, read.status, read.heartbeat) == (3, JobStatus.QUEUED, 1234.5)


def test_an_empty_hash_is_no_job() -> None:
    assert Job.from_hash("f" * 32, {}) is None


def test_terminal_states() -> None:
    assert [s for s in JobStatus if s.terminal] == [JobStatus.SUCCEEDED, JobStatus.FAILED]
