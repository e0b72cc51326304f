from __future__ import annotations

import re

import pytest

from tests.deploy.parsing import ROOT, copy_sources, parse_dockerfile


def patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """Return (excludes, regex) for each .dockerignore line, in order; a later match wins."""
    compiled = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        excludes = not line.startswith("!")
        glob = line.lstrip("!").strip("/")
        regex = ""
        for part in re.split(r"(\*\*/|\*\*|\*|\?)", glob):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(part, re.escape(part))
        compiled.append((excludes, re.compile(regex)))
    return compiled


def ignored(path: str) -> bool:
    """Tell whether the build context leaves out a path, or a folder holding it."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for excludes, regex in patterns():
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            verdict = excludes
    return verdict


@pytest.mark.parametrize("path", [".venv", "var", ".git", "var/redis/appendonly.aof", "api/__pycache__/x.pyc"])
def test_local_state_stays_out_of_the_build_context(path):
    assert ignored(path)


def test_everything_the_image_copies_is_in_the_build_context():
    stages = parse_dockerfile((ROOT / "Dockerfile").read_text())
    sources = [source.rstrip("/") for stage in stages for source in copy_sources(stage)]
    assert sources
    for source in sources:
        root = ROOT / source
        found = [root] if root.is_file() else root.rglob("*")
        files = [p for p in found if p.is_file() and "__pycache__" not in p.parts]
        assert files, source
        for path in files:
            assert not ignored(path.relative_to(ROOT).as_posix()), path
