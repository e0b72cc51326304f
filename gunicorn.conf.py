"""The API server's settings, in one place: `make up`, compose, the image and the tests all run with them.

gunicorn reads this file by itself when started from the repository root (`gunicorn 'api:create_app()'`),
and `stack.commands.api_command` names it. Anything here can be overridden for one run on the command
line or with gunicorn's own GUNICORN_CMD_ARGS, e.g. GUNICORN_CMD_ARGS="--keep-alive 75".
"""

import ctypes
import os

from settings import Settings

settings = Settings.from_env()

# PORT (1313), on every interface: in a container the port is published by compose, and `make up`
# serves other machines too. A --bind on the command line replaces it (the tests bind to loopback).
bind = [f"0.0.0.0:{settings.port}"]

# One process per core of the 2-core target, so request parsing (CPU, under the GIL) runs in
# parallel. WEB_CONCURRENCY is gunicorn's own name for this, which setting `workers` would hide.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# Threads, because most of a request's life is spent waiting on Redis, and a `?wait=` request
# holds its thread for up to 30 s. api.waiting lets at most MAX_WAITERS (12) requests of a process
# wait at once; the 4 threads beyond them keep answering submits, polls and probes while every
# waiter is taken. Tied to the setting, a larger MAX_WAITERS keeps that margin.
worker_class = "gthread"
threads = settings.max_waiters + 4

# On gthread this is not a request time limit: the master restarts a worker whose main loop has not
# checked in for this long. That loop keeps checking in while threads wait, so neither a long wait
# nor a slow upload trips it; a wedged process does. The margin is wide because a long C call that
# holds the GIL (decoding a body of hundreds of MiB) stops that loop while it runs.
timeout = 120

# On SIGTERM a worker stops accepting and finishes the requests in hand for up to this long, so a
# `?wait=` request (at most 30 s) can end normally. gunicorn's default.
graceful_timeout = 30

# Slow clients. An idle kept-alive connection waits in the worker's poller and holds no thread; it
# is closed after `keepalive` seconds. 5 s keeps the client's status requests (at most a second
# apart) on one connection. Behind a load balancer, set it above the balancer's idle timeout, or the
# balancer may reuse a connection that is being closed. A new connection holds a thread for up to
# 5 s (gunicorn's fixed wait) until its first bytes arrive, and a request sent slowly holds one
# until it is all in: gthread has no read deadline for HTTP/1 requests, and `timeout` above does not
# bound them. Measured on one process: 16 silent connections stalled it for 5 s, and 16 clients
# trickling a body stalled it until they left. On an untrusted network, put a buffering proxy
# (nginx, a cloud load balancer) in front: it hands gunicorn whole requests.
keepalive = 5

# The access log, without the query string: a key put in the URL by mistake (?api_key=...) must not
# land in the log. %(U)s is the path alone; the referer is left out for the same reason.
accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)s "%(a)s"'

# gunicornc is not used here, and its socket's default path ($HOME/.gunicorn/gunicorn.ctl) is shared
# by every gunicorn of a user, so parallel servers (tests, benchmarks) would take it from each other.
control_socket_disable = True

# Memory. A request of 100,000 rows decodes into many small objects spread over the threads' malloc
# arenas; freed, they stay in the process (measured: +80 MB of RSS per such request, kept). After a
# request or an answer over LARGE_BYTES, malloc_trim hands the free pages back (measured: back within
# a few MB of the baseline; tests/faults/test_field_cap.py). max_requests bounds what trimming cannot
# (fragmentation, a slow leak): a process is replaced, gracefully, after about that many requests, and
# the jitter keeps the processes from being replaced at the same moment.
max_requests = 10_000
max_requests_jitter = 1_000
LARGE_BYTES = 16 * 1024 * 1024
_malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only; elsewhere there is nothing to call


def post_request(worker, req, environ, resp):
    """Give freed memory back to the system after a large request or answer."""
    declared = environ.get("CONTENT_LENGTH") or "0"
    large = declared.isdigit() and int(declared) > LARGE_BYTES
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if _malloc_trim is not None and (large or chunked or (resp is not None and resp.sent > LARGE_BYTES)):
        _malloc_trim(0)


def post_worker_init(worker):
    """Answer gunicorn's own errors (a request line over 4 KiB, bad headers) in the API's JSON shape."""
    from api import server

    server.install()
