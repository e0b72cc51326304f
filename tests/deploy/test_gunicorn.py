"""gunicorn.conf.py as gunicorn itself reads it, under the commands that start the API."""

from __future__ import annotations

import os

import pytest

from settings import Settings
from stack.commands import API_PORT, GUNICORN_CONFIG, api_command
from tests.deploy.parsing import ROOT, gunicorn_settings

# The server's settings under test; a value of the caller's environment must not leak into them.
SERVER_VARIABLES = ("PORT", "WEB_CONCURRENCY", "GUNICORN_CMD_ARGS", "MAX_WAITERS", "MAX_STREAMS")
CONTRACT_COMMAND = ["gunicorn", "api:create_app()"]


@pytest.fixture(scope="module")
def clean_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name not in SERVER_VARIABLES}


@pytest.fixture(scope="module")
def contract(clean_env) -> dict[str, str]:
    """What `gunicorn 'api:create_app()'`, the command of the contract, runs with from the repository root."""
    return gunicorn_settings(CONTRACT_COMMAND, clean_env)


def test_the_config_is_in_the_repository_root():
    assert (ROOT / GUNICORN_CONFIG).is_file()
    assert api_command()[:3] == ["gunicorn", "--config", GUNICORN_CONFIG]


def test_the_contract_command_picks_the_config_up_by_itself(contract):
    # gunicorn's own defaults are one sync worker on 127.0.0.1:8000 with no access log.
    assert contract["worker_class"] == "gevent"
    assert contract["bind"] == f"['0.0.0.0:{API_PORT}']"
    assert contract["accesslog"] == "-"


def test_slow_clients_cost_greenlets_under_a_bound(contract):
    # A connection is a greenlet; waiters (MAX_WAITERS per process), event streams (MAX_STREAMS) and slow
    # clients hold no thread, and together they leave connections for the other requests.
    assert contract["worker_class"] == "gevent"
    assert Settings().max_waiters + Settings().max_streams < int(contract["worker_connections"]) <= 10_000


def test_the_launchers_command_runs_with_the_same_settings(contract, clean_env):
    launched = gunicorn_settings(api_command("127.0.0.1:5"), clean_env)
    assert launched["bind"] == "['127.0.0.1:5']"
    differing = {name for name in contract.keys() | launched.keys() if contract.get(name) != launched.get(name)}
    assert differing == {"bind", "config"}


def test_the_environment_sets_port_and_workers_and_gunicorn_cmd_args_the_rest(clean_env):
    env = {
        **clean_env,
        "PORT": "8123",
        "WEB_CONCURRENCY": "3",
        "GUNICORN_CMD_ARGS": "--keep-alive 75",
    }
    settings = gunicorn_settings(api_command(), env)
    assert settings["bind"] == "['0.0.0.0:8123']"
    assert (settings["workers"], settings["keepalive"]) == ("3", "75")


def test_no_control_socket_and_a_bounded_process_lifetime(contract):
    # gunicorn 27's control socket sits at one path per user, shared by every server of that user.
    assert contract["control_socket_disable"] == "True"
    assert int(contract["max_requests"]) > 0 and int(contract["max_requests_jitter"]) > 0
    assert "%(r)s" not in contract["access_log_format"] and "%(q)s" not in contract["access_log_format"]
