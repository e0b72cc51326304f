"""Proportional set size (PSS) of a process and its descendants, read from /proc.

PSS splits each shared page among the processes that map it, so the figures of a gunicorn
master and its forked workers add up to what they really cost together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessMemory:
    """One process: its id, its depth below the process that was started, its name and PSS."""

    pid: int
    depth: int
    name: str
    pss_kib: int

    @property
    def pss_mib(self) -> float:
        return self.pss_kib / 1024


def pss_kib(pid: int) -> int:
    """Return the PSS of one process in KiB, from /proc/<pid>/smaps_rollup."""
    for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise ValueError(f"no Pss line in /proc/{pid}/smaps_rollup")


def tree_memory(root: int) -> list[ProcessMemory]:
    """Return the PSS of `root` and of every live descendant, parents before children."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process ended while we looked
            continue
        pid = int(stat.parent.name)
        # The name sits in parentheses and may hold spaces; the parent id is the second field after it.
        names[pid] = text[text.index("(") + 1 : text.rindex(")")]
        parent = int(text[text.rindex(")") + 2 :].split()[1])
        children.setdefault(parent, []).append(pid)
    found: list[ProcessMemory] = []
    stack = [(root, 0)]
    while stack:
        pid, depth = stack.pop()
        try:
            found.append(ProcessMemory(pid, depth, names.get(pid, "?"), pss_kib(pid)))
        except (OSError, ValueError):
            continue
        stack.extend((child, depth + 1) for child in sorted(children.get(pid, []), reverse=True))
    return found
