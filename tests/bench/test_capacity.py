"""bench.capacity's CPU accounting, which its per-core figures rest on."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.capacity import cpu_seconds, load_average


def test_cpu_seconds_count_a_busy_child_and_not_an_idle_one() -> None:
    spin = "import sys, time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass\nsys.stdin.read()"
    busy = subprocess.Popen([sys.executable, "-c", spin], stdin=subprocess.PIPE)
    idle = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        while cpu_seconds(busy.pid) < 0.45:  # it spins for 0.5 CPU-seconds, then waits on stdin
            assert busy.poll() is None
        assert cpu_seconds(idle.pid) < 0.45
        assert cpu_seconds(os.getpid()) >= cpu_seconds(busy.pid)  # a parent's tree holds its children
    finally:
        for child in (busy, idle):
            child.communicate(b"")


def test_load_average_names_the_cores() -> None:
    assert load_average().endswith(f"on {os.cpu_count()} cores")
