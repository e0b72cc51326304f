"""Podman for the container test: the tools, the stand-in base images, the image build, a compose project.

Base images cannot be pulled on these machines, so `python:3.11-slim` and `redis:7` are local stand-ins
made from Debian 12 with debootstrap (the README's deploy section says how they differ). They are built
once and cached: in podman's store, and as an archive in CACHE_DIR, both keyed by a hash of what builds them.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.parsing import ROOT

CACHE_DIR = Path("/var/cache/glm-queue")
STANDINS = Path(__file__).parent / "standins"
REDIS_CONTAINERFILE = STANDINS / "redis.Containerfile"
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
PYTHON_PACKAGES = ("python3", "python3-venv", "ca-certificates")
# What the official python image sets that the Dockerfile relies on: `python` on PATH, a UTF-8 locale.
PYTHON_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
PYTHON_IMAGE, REDIS_IMAGE = "localhost/python:3.11-slim", "localhost/redis:7"
IMAGE = "localhost/glm-queue:latest"  # what docker-compose.yml's `image: glm-queue:latest` names
KEY_LABEL = "glm-queue.standin-key"
# pip in the build talks TLS through this machine's trust store, which may hold a CA the base image lacks.
TRUST_STORE = Path("/etc/ssl/certs/ca-certificates.crt")
SBIN = ("/usr/sbin", "/sbin")


class PodmanError(RuntimeError):
    """A podman or podman-compose command failed; the message holds its output."""


def podman_compose() -> str | None:
    """Return the podman-compose beside this interpreter (requirements-dev.txt), else the one on PATH."""
    beside = Path(sys.executable).parent / "podman-compose"
    return str(beside) if beside.exists() else shutil.which("podman-compose")


def unavailable() -> str | None:
    """Say why the container test cannot run on this machine, or return None when it can."""
    if os.geteuid() != 0:
        return "needs root: debootstrap and rootful podman with the runc runtime (CI runs as root)"
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    missing = [tool for tool in ("podman", "runc", "debootstrap") if shutil.which(tool, path=path) is None]
    missing += [] if podman_compose() else ["podman-compose (requirements-dev.txt)"]
    if missing:
        return f"not installed: {', '.join(missing)}; as root: apt-get install -y podman runc debootstrap"
    return None


def write_containers_conf(path: Path) -> Path:
    """Write a containers.conf: runc (crun fails on this cgroup layout), ulimits runc may set here."""
    # Podman asks for nofile 1048576 by default, above this machine's hard limit; runc also refused an
    # nproc limit above kernel.pid_max here. Each limit is the lowest of those bounds.
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    limits = {
        "nofile": _within(resource.RLIMIT_NOFILE, 1_048_576),
        "nproc": _within(resource.RLIMIT_NPROC, pid_max),
    }
    ulimits = ", ".join(f'"{name}={value}:{value}"' for name, value in limits.items())
    path.write_text(f'[containers]\ndefault_ulimits = [{ulimits}]\n\n[engine]\nruntime = "runc"\n')
    return path


def _within(kind: int, cap: int) -> int:
    hard = resource.getrlimit(kind)[1]
    return cap if hard == resource.RLIM_INFINITY else min(hard, cap)


@dataclass(frozen=True)
class Podman:
    """Runs podman with the test's containers.conf."""

    conf: Path

    def env(self) -> dict[str, str]:
        path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
        return {**os.environ, "PATH": path, "CONTAINERS_CONF": str(self.conf)}

    def run(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one podman command; raise PodmanError with its output when `check` and it fails."""
        return self.call(["podman", *args], timeout, check)

    def call(self, argv: list[str], timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(argv, env=self.env(), cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise PodmanError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def label(self, image: str, name: str) -> str | None:
        """Return an image's label, or None when the image or the label is missing."""
        result = self.run("image", "inspect", "--format", f'{{{{index .Labels "{name}"}}}}', image, check=False)
        value = result.stdout.strip()
        return value if result.returncode == 0 and value not in ("", "<no value>") else None

    def names(self) -> dict[str, set[str]]:
        """Return the names of every container, volume and network: what a test may leave behind."""
        listings = {
            "containers": ("ps", "--all", "--format", "{{.Names}}"),
            "volumes": ("volume", "ls", "--format", "{{.Name}}"),
            "networks": ("network", "ls", "--format", "{{.Name}}"),
        }
        return {kind: set(self.run(*args).stdout.split()) for kind, args in listings.items()}


def standin_key() -> str:
    """Return a hash of everything that builds the stand-ins: a change to any of it builds them again."""
    digest = hashlib.sha256()
    for part in (SUITE, MIRROR, *PYTHON_PACKAGES, *PYTHON_CHANGES, REDIS_CONTAINERFILE.read_text()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def prepare_standins(podman: Podman, cache_dir: Path = CACHE_DIR) -> str:
    """Make sure both stand-ins are in podman's store; return where they came from."""
    key = standin_key()
    if all(podman.label(image, KEY_LABEL) == key for image in (PYTHON_IMAGE, REDIS_IMAGE)):
        return "already in podman's store"
    archive = cache_dir / f"standins-{key}.tar"
    if archive.exists():
        podman.run("load", "--input", str(archive))
        return f"loaded from {archive}"
    build_standins(podman, key)
    cache_dir.mkdir(parents=True, exist_ok=True)
    for stale in cache_dir.glob("standins-*.tar"):
        stale.unlink()
    partial = archive.with_suffix(".partial")
    podman.run("save", "--multi-image-archive", "--output", str(partial), PYTHON_IMAGE, REDIS_IMAGE)
    partial.rename(archive)
    return f"built, and saved to {archive}"


def build_standins(podman: Podman, key: str) -> None:
    """Debootstrap Debian 12 with Python into the python stand-in; build the redis stand-in on it."""
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="glmq-standin-") as tmp:
        root, tarball = Path(tmp) / "rootfs", Path(tmp) / "rootfs.tar"
        include = ",".join(PYTHON_PACKAGES)
        podman.call(["debootstrap", "--variant=minbase", f"--include={include}", SUITE, str(root), MIRROR], 900)
        (root / "usr/bin/python").symlink_to("python3")
        for leftover in (*root.glob("var/cache/apt/archives/*.deb"), *root.glob("var/lib/apt/lists/*_*")):
            leftover.unlink()
        podman.call(["tar", "--numeric-owner", "--create", "--file", str(tarball), "--directory", str(root), "."])
        changes = [*PYTHON_CHANGES, f"LABEL {KEY_LABEL}={key}"]
        podman.run("import", *(f"--change={change}" for change in changes), str(tarball), PYTHON_IMAGE)
    podman.run(
        "build", "--pull=never", "--isolation=chroot", *trust_store_mount(), "--label", f"{KEY_LABEL}={key}",
        "--file", str(REDIS_CONTAINERFILE), "--tag", REDIS_IMAGE, str(STANDINS), timeout=600,
    )  # fmt: skip


def trust_store_mount() -> list[str]:
    return ["--volume", f"{TRUST_STORE}:{TRUST_STORE}:ro"] if TRUST_STORE.exists() else []


def build_image(podman: Podman) -> None:
    """Build the project's Dockerfile as it is, on the stand-ins, into the image compose names."""
    # --format=docker: podman's default OCI format drops the Dockerfile's HEALTHCHECK.
    podman.run(
        "build", "--pull=never", "--isolation=chroot", "--format=docker", *trust_store_mount(),
        "--tag", IMAGE, str(ROOT), timeout=900,
    )  # fmt: skip


@dataclass(frozen=True)
class Project:
    """docker-compose.yml brought up by podman-compose under its own project name and .env file."""

    name: str
    env_file: Path
    podman: Podman

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        program = podman_compose()
        assert program, "podman-compose is not installed"
        files = ["--project-name", self.name, "--env-file", str(self.env_file), "--file", "docker-compose.yml"]
        return self.podman.call([program, *files, *args], timeout)

    def up(self, workers: int = 1) -> None:
        self.compose("up", "--detach", "--no-build", "--scale", f"worker={workers}")

    def containers(self, service: str, running: bool = False) -> list[str]:
        """Return the names of a service's containers, in replica order."""
        filters = [f"label=io.podman.compose.project={self.name}", f"label=com.docker.compose.service={service}"]
        args = ["ps", "--format", "{{.Names}}", *(f"--filter={f}" for f in filters)]
        names = self.podman.run(*args, *([] if running else ["--all"])).stdout.split()
        return sorted(names, key=lambda name: int(name.rsplit("_", 1)[1]))

    def logs(self, container: str) -> str:
        result = self.podman.run("logs", container)
        return result.stdout + result.stderr

    def exec(self, container: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.podman.run("exec", container, *argv, check=check)

    def leftovers(self) -> list[str]:
        """Return every container, volume and network of this project that still exists."""
        found = self.podman.run("ps", "--all", "--format", "{{.Names}}", f"--filter=name={self.name}_").stdout.split()
        for kind in ("volume", "network"):
            listed = self.podman.run(kind, "ls", "--format", "{{.Name}}").stdout.split()
            found += [name for name in listed if name.startswith(f"{self.name}_")]
        return found

    def down(self) -> None:
        """Take the project down, volumes included."""
        # podman-compose's down knows only the replicas the file declares: a scaled-out worker it leaves
        # running, and redis and model-init with it, since the worker depends on them. Scale back first.
        for extra in self.containers("worker")[1:]:
            self.podman.run("rm", "--force", "--time", "10", extra)
        self.compose("down", "--volumes", "--remove-orphans")
