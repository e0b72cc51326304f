"""What can go wrong when talking to the prediction service, as exceptions a caller can act on."""

from __future__ import annotations

from typing import Any


class PredictionError(Exception):
    """Base of every error the client raises."""


class ClientError(PredictionError):
    """The service answered with an error status, e.g. 422 invalid_threshold."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(status, code, message, details)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


class ConnectionFailedError(PredictionError):
    """The service could not be reached, even after retrying."""

    def __init__(self, url: str, attempts: int, reason: str) -> None:
        super().__init__(url, attempts, reason)
        self.url = url
        self.attempts = attempts
        self.reason = reason

    def __str__(self) -> str:
        tries = "attempt" if self.attempts == 1 else "attempts"
        return f"cannot reach {self.url} after {self.attempts} {tries}: {self.reason}"


class JobFailedError(PredictionError):
    """A job was accepted but ended in status failed."""

    def __init__(self, task_id: str, code: str, message: str) -> None:
        super().__init__(task_id, code, message)
        self.task_id = task_id
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"task {self.task_id} failed ({self.code}): {self.message}"


class WaitTimeoutError(PredictionError):
    """A job did not finish within the time the caller was willing to wait."""

    def __init__(self, task_id: str, status: str, seconds: float) -> None:
        super().__init__(task_id, status, seconds)
        self.task_id = task_id
        self.status = status
        self.seconds = seconds

    def __str__(self) -> str:
        return f"task {self.task_id} still {self.status} after {self.seconds:g} s"


class InputError(PredictionError):
    """An input file cannot be read as records, or an output path has no known format."""
