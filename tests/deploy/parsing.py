"""Small readers for the deployment files: compose interpolation, .env files, Dockerfiles, gunicorn.conf.py."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

# Compose interpolation: $$ is a literal dollar; ${NAME}, ${NAME:-default}, ${NAME-default},
# ${NAME:?error}, ${NAME?error} and $NAME are substituted.
_REFERENCE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariableError(LookupError):
    """A ${NAME:?} or ${NAME?} variable has no value."""


def interpolate(text: str, environ: Mapping[str, str]) -> str:
    """Substitute variables in one string the way compose does."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg") or ""
        value = environ.get(name)
        missing = not value if op in (":-", ":?") else value is None
        if not missing:
            return value or ""
        if op in (":?", "?"):
            raise MissingVariableError(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return _REFERENCE.sub(substitute, text)


def referenced_variables(text: str) -> set[str]:
    """Return the names of the variables a string interpolates."""
    return {m.group("name") or m.group("bare") for m in _REFERENCE.finditer(text) if m.group(0) != "$$"}


def strings(node: Any) -> Iterator[str]:
    """Yield every string in a parsed YAML document, keys included."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def read_env_file(path: Path) -> dict[str, str]:
    """Return the NAME=value assignments of a .env file, ignoring comments and blank lines."""
    assignments: dict[str, str] = {}
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, sep, value = stripped.partition("=")
        if not sep:
            raise ValueError(f"{path.name}: not an assignment: {line!r}")
        assignments[name.strip()] = value.strip()
    return assignments


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    base: str
    alias: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        """Return the arguments of every instruction of one kind, in order."""
        return [i.args for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        """Return the variables the stage's ENV instructions set."""
        values: dict[str, str] = {}
        for args in self.all("ENV"):
            words = shlex.split(args)
            if len(words) >= 2 and "=" not in words[0]:  # legacy form: ENV NAME value
                values[words[0]] = " ".join(words[1:])
                continue
            for word in words:
                name, _, value = word.partition("=")
                values[name] = value
        return values


def parse_dockerfile(text: str) -> list[Stage]:
    """Split a Dockerfile into stages of instructions, joining continued lines and dropping comments."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.strip().startswith("#"):
            continue  # comments, parser directives too, even inside a continued instruction
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined = (pending + line).strip()
        pending = ""
        if joined:
            logical.append(joined)
    stages: list[Stage] = []
    for entry in logical:
        keyword, _, args = entry.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], alias=alias))
        elif not stages:
            if keyword != "ARG":
                raise ValueError(f"instruction before the first FROM: {entry!r}")
        else:
            stages[-1].instructions.append(Instruction(keyword, args))
    return stages


def copy_sources(stage: Stage) -> list[str]:
    """Return the build-context paths a stage copies (COPY without --from)."""
    sources: list[str] = []
    for args in stage.all("COPY"):
        words = shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        paths = [w for w in words if not w.startswith("--")]
        sources.extend(paths[:-1])
    return sources


_GUNICORN_SETTING = re.compile(r"(?P<name>[a-z_0-9]+) += (?P<value>.*)")


def gunicorn_settings(argv: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """Return the settings gunicorn runs a command line with, from the repository root, as it prints them."""
    program, *args = argv
    beside = Path(sys.executable).parent / program
    command = [str(beside) if beside.exists() else program, "--print-config", *args]
    result = subprocess.run(command, cwd=ROOT, env=dict(environ), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    matches = (_GUNICORN_SETTING.fullmatch(line) for line in result.stdout.splitlines())
    return {m.group("name"): m.group("value") for m in matches if m}
