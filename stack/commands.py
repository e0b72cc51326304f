"""The one definition of how each service starts; the local launcher and compose both use it."""

from __future__ import annotations

API_PORT = 1313


def api_command(bind: str = f"0.0.0.0:{API_PORT}") -> list[str]:
    """Return the API server's command line."""
    return [
        "gunicorn",
        "--bind", bind,
        "--workers", "2",
        "--threads", "4",
        "--timeout", "120",
        "--access-logfile", "-",
        "api:create_app()",
    ]  # fmt: skip


def worker_command(concurrency: int | None = None, app: str = "worker") -> list[str]:
    """Return a Celery worker's command line; concurrency defaults to the core count."""
    command = ["celery", "--app", app, "worker", "--loglevel", "INFO", "--queues", "predictions"]
    return command if concurrency is None else [*command, "--concurrency", str(concurrency)]


def redis_args(port: int, data_dir: str, password: str | None = None) -> list[str]:
    """Return redis-server arguments: AOF every second, loopback only, CONFIG disabled, never evict."""
    args = [
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--dir", data_dir,
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--save", "",
        "--maxmemory-policy", "noeviction",
        "--rename-command", "CONFIG", "",
    ]  # fmt: skip
    return args if password is None else [*args, "--requirepass", password]
