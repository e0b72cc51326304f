import pytest

from jobs.broker import chunk_args

JOB_ID = "0123456789abcdef0123456789abcdef"


def test_chunk_args_are_a_job_id_and_a_chunk_number() -> None:
    assert chunk_args([JOB_ID, 0]) == (JOB_ID, 0)
    assert chunk_args((JOB_ID, 7)) == (JOB_ID, 7)


@pytest.mark.parametrize(
    "args",
    [[], [JOB_ID], [JOB_ID, 0, 1], [JOB_ID, True], [JOB_ID, 0.0], [JOB_ID, -1], [JOB_ID, "0"], [JOB_ID, None],
     [JOB_ID.upper(), 0], [JOB_ID + "}:x", 0], [7, 0], [None, 0]],
)  # fmt: skip
def test_anything_else_is_refused(args) -> None:
    assert chunk_args(args) is None
