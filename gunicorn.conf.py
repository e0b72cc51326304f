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

# gevent: one greenlet per connection, so a client that sends its request slowly costs a
# greenlet, not one of a few threads. With gthread (16 threads), 200 connections dribbling their
# headers or body starved every other request (1 of 4 answered in 12 s; tests/faults/
# test_slow_clients.py). Most of a request's life is spent waiting on Redis, which gevent's patched
# sockets turn into a switch; a `?wait=` request waits the same way, at most MAX_WAITERS (100) of
# them per process, each on a Redis connection of its own (api/waiting.py), and so does an event
# stream (GET /tasks/<id>/events), at most MAX_STREAMS (100) per process (api/events.py).
worker_class = "gevent"

# The bound on connections, per process: past it, a process accepts no more until one ends. A slow
# client's headers are cut off after `keepalive` seconds (gunicorn's async workers read them under
# that timeout); its body is read only as the app asks, and api.bodies bounds the drain of an
# oversized one to 10 s.
worker_connections = 1000

# Not a request time limit: the master restarts a worker whose main loop has not checked in for this
# long. That loop is a greenlet, so waits and slow uploads do not trip it; a wedged process does. The
# margin is wide because a long C call (decoding a body of hundreds of MiB) holds the process while it runs.
timeout = 120

# On SIGTERM a worker stops accepting and finishes the requests in hand for up to this long, so a
# `?wait=` request (at most 30 s) can end normally. gunicorn's default.
graceful_timeout = 30

# An idle kept-alive connection is closed after `keepalive` seconds, and a request's line and headers
# must arrive within it. 5 s keeps the client's status requests (at most a second apart) on one
# connection. Behind a load balancer, set it above the balancer's idle timeout, or the balancer may
# reuse a connection that is being closed. A buffering proxy in front (nginx, a cloud load balancer)
# would add what gevent does not: it hands gunicorn whole requests, so a slow body costs the proxy, not
# a greenlet and a connection slot here; see docker-compose.yml.
keepalive = 5

# The access log, without the query string: a key put in the URL by mistake (?api_key=...) must not
# land in the log. %(U)s is the path alone; the referer is left out for the same reason.
accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(L)s "%(a)s"'

# gunicornc is not used here, and its socket's default path ($HOME/.gunicorn/gunicorn.ctl) is shared
# by every gunicorn of a user, so parallel servers (tests, benchmarks) would take it from each other.
control_socket_disable = True

# Memory. A request of 100,000 rows decodes into many small objects; freed, their pages stay in the
# process's malloc heap (measured: +80 MB of RSS per such request, kept). After a request or an answer
# over LARGE_BYTES, malloc_trim hands the free pages back (measured with long strings: +105 MiB right
# after, back within 4 MiB of the baseline; tests/faults/test_field_cap.py). max_requests bounds what trimming cannot
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
