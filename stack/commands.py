"""The one definition of how each service starts; the local launcher, compose and the image use it.

Each command runs from the repository root (the image's /app), where gunicorn.conf.py lives.
"""

from __future__ import annotations

from settings import Settings

API_PORT = Settings().port
# Named, not left for gunicorn to find in the working directory: run from anywhere else, the API
# fails at once instead of starting with gunicorn's defaults (one sync worker on 127.0.0.1:8000).
GUNICORN_CONFIG = "gunicorn.conf.py"


def api_command(bind: str | None = None) -> list[str]:
    """Return the API server's command line; without `bind` it listens where gunicorn.conf.py says."""
    where = [] if bind is None else ["--bind", bind]
    return ["gunicorn", "--config", GUNICORN_CONFIG, *where, "api:create_app()"]


def worker_command(concurrency: int | None = None, app: str = "worker") -> list[str]:
    """Return a Celery worker's command line; concurrency defaults to the core count."""
    command = ["celery", "--app", app, "worker", "--loglevel", "INFO", "--queues", "predictions,webhooks"]
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
