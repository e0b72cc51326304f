"""A private rabbitmq-server node: its own port, node name, data and logs, never the system's on 5672.

The system package's wrapper reads /etc/rabbitmq (which pins 5672) unless told otherwise, and, started
as root, drops to the `rabbitmq` user: so the node's folder belongs to that user, and every file it
reads is named in its environment. The node takes about 15 s to start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stack.processes import Process, StartupError, free_port, spawn, wait_until

STARTUP_SECONDS = 90


def rabbitmq_available() -> str | None:
    """Return why a private node cannot start here, or None when it can."""
    if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
        return "rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)"
    return None


@dataclass
class RabbitNode:
    """A running private node and how to reach it."""

    port: int
    name: str
    root: Path
    env: dict[str, str]
    process: Process

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def stop(self) -> None:
        """Stop the node (rabbitmqctl stop, then SIGKILL of its VM if that failed) and remove its folder."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                ["rabbitmqctl", "-n", self.name, "stop"], env=self.env, capture_output=True, timeout=60, check=False
            )
        pid_file = self.root / "pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)
        self.process.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_rabbitmq(log_dir: Path) -> RabbitNode:
    """Start a private node on free ports and wait until it accepts AMQP connections."""
    port, dist_port = free_port(), free_port()
    # Not under pytest's tmp_path: that is private to root, and the node runs as `rabbitmq`.
    root = Path(tempfile.mkdtemp(prefix="glmq-rabbitmq-"))
    (root / "mnesia").mkdir()
    (root / "log").mkdir()
    (root / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{port}\n")
    (root / "enabled_plugins").write_text("[].\n")
    (root / "rabbitmq-env.conf").write_text("")
    root.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(root, "rabbitmq", "rabbitmq")
        for path in root.rglob("*"):
            shutil.chown(path, "rabbitmq", "rabbitmq")
    name = f"glmq-{port}@localhost"
    env = {
        "RABBITMQ_CONF_ENV_FILE": str(root / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(root / "rabbitmq.conf"),
        "RABBITMQ_NODENAME": name,
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(root / "mnesia"),
        "RABBITMQ_LOG_BASE": str(root / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(root / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(root / "pid"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
    }
    process = spawn("rabbitmq", ["rabbitmq-server"], log_dir / "rabbitmq.log", env)
    node = RabbitNode(port, name, root, {**os.environ, **env}, process)
    try:
        wait_until(lambda: _check(process) and _accepts(port), STARTUP_SECONDS, f"rabbitmq on port {port}")
    except BaseException:
        node.stop()
        raise
    return node


def _check(process: Process) -> bool:
    if not process.alive():
        raise StartupError(f"rabbitmq-server exited with {process.popen.returncode}:\n{process.log_tail()}")
    return True


def _accepts(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
