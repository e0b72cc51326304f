"""Client of the prediction service: `PredictionClient` in Python, `python -m client predict FILE` in a shell."""

from client.api import PredictionClient, Submitted
from client.errors import (
    ClientError,
    ConnectionFailedError,
    InputError,
    JobFailedError,
    PredictionError,
    WaitTimeoutError,
)

__all__ = [
    "ClientError",
    "ConnectionFailedError",
    "InputError",
    "JobFailedError",
    "PredictionClient",
    "PredictionError",
    "Submitted",
    "WaitTimeoutError",
]
