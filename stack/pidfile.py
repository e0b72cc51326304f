"""The launcher's record of the processes it started, so that `make down` can stop a stack whose launcher died.

One line per process: `<name> <pid>`. Each child leads its own process group, so its pid names the group.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

LAUNCHER = "launcher"


def record(path: Path, name: str, pid: int) -> None:
    """Append one process to the record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(f"{name} {pid}\n")
        handle.flush()
        os.fsync(handle.fileno())


def recorded(path: Path) -> list[tuple[str, int]]:
    """Return the recorded processes that still run, in the order they were started."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    entries = [(name, int(pid)) for name, pid in (line.split() for line in lines if line.strip())]
    return [(name, pid) for name, pid in entries if _signal(name, pid, 0)]


def stop_recorded(path: Path, timeout: float = 15.0) -> list[tuple[str, int]]:
    """Stop every recorded process, newest first (TERM, then KILL); clear the record; return them."""
    entries = recorded(path)
    for name, pid in reversed(entries):
        _signal(name, pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_signal(name, pid, 0) for name, pid in entries) and time.monotonic() < deadline:
        time.sleep(0.1)
    for name, pid in entries:
        _signal(name, pid, signal.SIGKILL)
    path.unlink(missing_ok=True)
    return entries


def _signal(name: str, pid: int, signum: int) -> bool:
    """Signal the launcher alone, or a child's whole group (alive while any member is); say if it exists."""
    try:
        if name == LAUNCHER:
            if "State:\tZ" in Path(f"/proc/{pid}/status").read_text():
                return False
            os.kill(pid, signum)
        else:
            # A child leads its own session, so its group outlives it: kill the group, not the pid.
            os.killpg(pid, signum)
    except (ProcessLookupError, FileNotFoundError, PermissionError):
        return False
    return True
