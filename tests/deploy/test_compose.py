from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from settings import Settings
from stack.commands import API_PORT, api_command, redis_args, worker_command
from tests.deploy.parsing import MissingVariableError, gunicorn_settings, interpolate, referenced_variables, strings

APP_SERVICES = ("model-init", "api", "worker")
# Variables compose interpolates that are not settings: they build values, never reach the app as such.
COMPOSE_ONLY = {"REDIS_PASSWORD", "FLOWER_BASIC_AUTH", "RABBITMQ_PASSWORD", "API_HOST"}
REQUIRED_PASSWORD = re.compile(r"\$\{REDIS_PASSWORD:\?[^}]*\}")


def argv(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def option(words: list[str], flag: str, count: int = 1) -> list[str]:
    """Return the `count` words after `flag`; fail when the flag is absent."""
    assert flag in words, f"{flag} missing from {words}"
    start = words.index(flag) + 1
    return words[start : start + count]


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, str, bool]]:
    """Map each mounted volume's source to (source, target, read_only), for short and long syntax."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            read_only = "ro" in (mode[0].split(",") if mode else [])
        else:
            source, target, read_only = volume["source"], volume["target"], bool(volume.get("read_only", False))
        found[source] = (source, target, read_only)
    return found


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    conditions = service.get("depends_on", {})
    if isinstance(conditions, list):  # short syntax: started, not healthy
        return dict.fromkeys(conditions, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in conditions.items()}


def resolved_env(shared_env: dict[str, str], environ: dict[str, str]) -> dict[str, str]:
    return {name: interpolate(str(value), environ) for name, value in shared_env.items()}


def test_file_uses_the_compose_spec_without_a_version(compose):
    assert "version" not in compose


def test_every_service_is_defined(services):
    assert {"redis", "model-init", "api", "worker", "flower"} <= set(services)


def test_only_flower_and_rabbitmq_sit_behind_profiles_of_their_own(services):
    assert services["flower"]["profiles"] == ["monitoring"]
    assert services["rabbitmq"]["profiles"] == ["rabbitmq"]
    assert [name for name, service in services.items() if "profiles" in service] == ["flower", "rabbitmq"]


def test_rabbitmq_publishes_no_port_and_refuses_to_start_without_a_password(services):
    rabbitmq = services["rabbitmq"]
    assert "ports" not in rabbitmq
    assert rabbitmq["environment"]["RABBITMQ_DEFAULT_PASS"] == "${RABBITMQ_PASSWORD:-}"
    shell, flag, script = (word.replace("$$", "$") for word in argv(rabbitmq["command"]))
    guard = script.removesuffix("; exec docker-entrypoint.sh rabbitmq-server")
    refused = subprocess.run([shell, flag, guard], env={"RABBITMQ_DEFAULT_PASS": ""}, capture_output=True, text=True)
    assert (refused.returncode, refused.stderr) == (1, "rabbitmq: set RABBITMQ_PASSWORD in .env\n")
    assert subprocess.run([shell, flag, guard], env={"RABBITMQ_DEFAULT_PASS": "pw"}).returncode == 0


def test_redis_is_the_official_image_7(services):
    image = services["redis"]["image"]
    assert image == "redis:7" or image.startswith("redis:7.")


def test_redis_publishes_no_port(services):
    assert "ports" not in services["redis"]


def test_redis_requires_a_password_from_the_environment(services):
    words = argv(services["redis"]["command"])
    (password,) = option(words, "--requirepass")
    assert REQUIRED_PASSWORD.fullmatch(password)


def test_redis_persists_and_hides_config_like_the_local_stack(services):
    words = argv(services["redis"]["command"])
    assert option(words, "--appendonly") == ["yes"]
    assert option(words, "--appendfsync") == ["everysec"]
    assert option(words, "--rename-command", 2) == ["CONFIG", ""]
    local = redis_args(6379, "/data")
    flags = (
        ("--appendonly", 1),
        ("--appendfsync", 1),
        ("--save", 1),
        ("--maxmemory-policy", 1),
        ("--rename-command", 2),
    )
    for flag, count in flags:
        assert option(words, flag, count) == option(local, flag, count), flag


def test_redis_keeps_its_data_in_a_named_volume(compose, services):
    _, target, read_only = mounts(services["redis"])["redis-data"]
    assert target == "/data" and not read_only
    assert "redis-data" in compose["volumes"]
    assert option(argv(services["redis"]["command"]), "--dir") == ["/data"]


def test_redis_healthcheck_pings_with_the_password(services):
    check = services["redis"]["healthcheck"]
    test = " ".join(argv(check["test"]))
    assert "redis-cli" in test and "ping" in test
    authenticated = "-a" in test.split() or REQUIRED_PASSWORD.fullmatch(
        str(services["redis"].get("environment", {}).get("REDISCLI_AUTH", ""))
    )
    assert authenticated, "the healthcheck must authenticate, or it reports NOAUTH as healthy"
    assert {"interval", "timeout", "retries"} <= set(check)


@pytest.mark.parametrize("name", ["api", "worker"])
def test_app_waits_for_a_healthy_redis_and_the_bootstrapped_model(services, name):
    assert depends_on(services[name]) == {
        "redis": "service_healthy",
        "model-init": "service_completed_successfully",
    }


def test_model_init_bootstraps_once_into_a_writable_volume(services):
    model_init = services["model-init"]
    assert argv(model_init["command"]) == ["python", "-m", "training", "bootstrap"]
    assert str(model_init["restart"]) == "no"
    assert mounts(model_init)["models"] == ("models", "/models", False)
    assert depends_on(model_init).keys() <= {"redis"}


@pytest.mark.parametrize("name", ["api", "worker"])
def test_app_reads_models_from_a_read_only_volume(services, name):
    assert mounts(services[name])["models"] == ("models", "/models", True)


def test_models_volume_is_where_the_settings_look(compose, shared_env):
    assert "models" in compose["volumes"]
    assert shared_env["MODEL_STORE_DIR"] == mounts(compose["services"]["api"])["models"][1]


def test_api_runs_the_local_stacks_command(services):
    # The server's settings are in gunicorn.conf.py, which the image holds; none are repeated here.
    assert argv(services["api"]["command"]) == api_command()


def test_worker_runs_the_local_stacks_command(services):
    assert argv(services["worker"]["command"]) == worker_command()


def test_api_is_published_on_the_port_it_binds(services, shared_env):
    # gunicorn.conf.py binds to PORT from the shared env, as the api container would read it.
    env = {**os.environ, **resolved_env(shared_env, {"REDIS_PASSWORD": "pw"})}
    env.pop("GUNICORN_CMD_ARGS", None)
    assert gunicorn_settings(argv(services["api"]["command"]), env)["bind"] == f"['0.0.0.0:{API_PORT}']"
    assert services["api"]["ports"] == [f"${{API_HOST:-127.0.0.1}}:${{PORT:-{API_PORT}}}:{API_PORT}"]


def test_api_is_published_on_loopback_unless_told_otherwise(services):
    (published,) = services["api"]["ports"]
    assert interpolate(published, {}) == f"127.0.0.1:{API_PORT}:{API_PORT}"
    assert interpolate(published, {"API_HOST": "0.0.0.0", "PORT": "8080"}) == f"0.0.0.0:8080:{API_PORT}"


def test_worker_can_be_scaled(services):
    worker = services["worker"]
    for key in ("container_name", "ports", "hostname"):
        assert key not in worker, f"worker sets {key}, which breaks --scale worker=N"


def test_worker_overrides_the_images_api_healthcheck(services):
    test = " ".join(argv(services["worker"]["healthcheck"]["test"]))
    assert "/health" not in test and "celery" in test and "ping" in test


def test_app_services_share_one_image_and_the_shared_env(services, shared_env):
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        assert services[name]["build"] in (".", {"context": "."})
        assert services[name]["environment"] is shared_env, f"{name} must use the *app-env anchor"


def test_shared_env_names_are_settings(shared_env, setting_names):
    assert set(shared_env) - setting_names - COMPOSE_ONLY == set()


def test_every_setting_is_in_the_shared_env(shared_env, setting_names):
    assert setting_names - set(shared_env) == set()


def test_shared_env_defaults_are_the_settings_defaults(shared_env):
    settings = Settings.from_env(resolved_env(shared_env, {"REDIS_PASSWORD": "pw"}))
    defaults = Settings()
    assert settings.redis_url.reveal() == "redis://:pw@redis:6379/0"
    assert settings.model_store_dir == Path("/models")
    for f in fields(Settings):
        if f.name not in ("redis_url", "model_store_dir"):
            assert getattr(settings, f.name) == getattr(defaults, f.name), f.name


def test_shared_env_passes_settings_through(shared_env):
    passed = {"CHUNK_ROWS": "77", "API_KEYS": "a,b", "MODEL_NAME": "other"}
    settings = Settings.from_env(resolved_env(shared_env, {"REDIS_PASSWORD": "pw", **passed}))
    assert (settings.chunk_rows, len(settings.api_keys), settings.model_name) == (77, 2, "other")


def test_shared_env_requires_the_redis_password(shared_env):
    with pytest.raises(MissingVariableError, match="REDIS_PASSWORD"):
        resolved_env(shared_env, {})
    assert REQUIRED_PASSWORD.search(shared_env["REDIS_URL"])


def test_every_interpolated_variable_is_known(compose, setting_names):
    referenced = set().union(*(referenced_variables(s) for s in strings(compose)))
    assert referenced - setting_names - COMPOSE_ONLY == set()
    assert referenced >= COMPOSE_ONLY


def test_flower_watches_the_same_broker(services, shared_env):
    assert services["flower"]["image"].startswith("mher/flower:2.")
    assert services["flower"]["environment"]["CELERY_BROKER_URL"] == shared_env["REDIS_URL"]


def test_only_the_redis_password_is_needed_to_start(compose):
    everything = "\n".join(strings(compose))
    with pytest.raises(MissingVariableError, match="REDIS_PASSWORD"):
        interpolate(everything, {})
    interpolate(everything, {"REDIS_PASSWORD": "s3cret"})


def test_flower_refuses_to_start_without_basic_auth(services):
    flower = services["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == "${FLOWER_BASIC_AUTH:-}"
    # Compose turns $$ into $ before the container's shell sees the command.
    shell, flag, script = (word.replace("$$", "$") for word in argv(flower["command"]))
    assert (shell, flag) == ("sh", "-c") and script.endswith("; exec celery flower")
    guard = script.removesuffix("; exec celery flower")
    refused = subprocess.run([shell, flag, guard], env={"FLOWER_BASIC_AUTH": ""}, capture_output=True, text=True)
    assert (refused.returncode, refused.stderr) == (1, "flower: set FLOWER_BASIC_AUTH=user:password in .env\n")
    allowed = subprocess.run([shell, flag, guard], env={"FLOWER_BASIC_AUTH": "admin:pw"}, capture_output=True)
    assert allowed.returncode == 0


def test_flower_is_published_on_loopback_only(services):
    ports = services["flower"]["ports"]
    assert ports and all(str(port).startswith("127.0.0.1:") for port in ports)
