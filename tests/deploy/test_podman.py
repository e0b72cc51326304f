"""The container test's helpers that need no podman: why it would skip, the limits it gives runc, the cache key."""

from __future__ import annotations

import os
import resource

import pytest

from tests.deploy import podman as pm


def test_unavailable_names_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(pm, "SBIN", ())
    monkeypatch.setattr(pm, "podman_compose", lambda: None)
    reason = pm.unavailable()
    if os.geteuid() != 0:
        assert reason and reason.startswith("needs root")
    else:
        assert reason == (
            "not installed: podman, runc, debootstrap, podman-compose (requirements-dev.txt); "
            "as root: apt-get install -y podman runc debootstrap"
        )


@pytest.mark.parametrize(("kind", "name"), [(resource.RLIMIT_NOFILE, "nofile"), (resource.RLIMIT_NPROC, "nproc")])
def test_containers_conf_keeps_ulimits_within_the_hard_limits(tmp_path, kind, name):
    text = pm.write_containers_conf(tmp_path / "containers.conf").read_text()
    assert 'runtime = "runc"' in text
    value = int(text.split(f'"{name}=')[1].split(":")[0])
    hard = resource.getrlimit(kind)[1]
    assert value > 0 and (hard == resource.RLIM_INFINITY or value <= hard)


def test_standin_key_follows_what_builds_the_standins(monkeypatch, tmp_path):
    key = pm.standin_key()
    changed = tmp_path / "redis.Containerfile"
    changed.write_text(pm.REDIS_CONTAINERFILE.read_text() + "# changed\n")
    monkeypatch.setattr(pm, "REDIS_CONTAINERFILE", changed)
    with_changed_file = pm.standin_key()
    monkeypatch.setattr(pm, "PYTHON_PACKAGES", (*pm.PYTHON_PACKAGES, "curl"))
    assert len({key, with_changed_file, pm.standin_key()}) == 3
