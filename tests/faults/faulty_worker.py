"""A worker entry point for fault tests: the real app, with scoring that misbehaves on cue.

A chunk holding a record whose x12 is one of these markers:
- "__crash__": the worker process dies (os._exit), as on a segfault or an OOM kill;
- "__sleep__": scoring takes 30 s, so the soft time limit interrupts it;
- "__hang__": scoring ignores the soft limit too, so the hard limit kills the process.
With FAULT_SCORE_SECONDS set, every call to score takes at least that long (a slow worker).

Start it with `celery --app tests.faults.faulty_worker worker`.
"""

import contextlib
import os
import time

from celery.exceptions import SoftTimeLimitExceeded

import training.scoring
from worker.celery import app

__all__ = ["app"]

_real_score_batches = training.scoring.score_batches
_SLOW = float(os.environ.get("FAULT_SCORE_SECONDS") or 0)


def _misbehaving_score_batches(pipeline, batches, thresholds, *args, **kwargs):
    markers = {record.get("x12") for records in batches for record in records}
    if "__crash__" in markers:
        os._exit(70)
    if "__sleep__" in markers:
        time.sleep(30)
    if "__hang__" in markers:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(SoftTimeLimitExceeded):
                time.sleep(0.1)
    time.sleep(_SLOW)
    return _real_score_batches(pipeline, batches, thresholds, *args, **kwargs)


# Both chunks of big jobs (score_records) and micro-batches of small ones go through score_batches.
training.scoring.score_batches = _misbehaving_score_batches
