from collections.abc import Iterator

import pytest

from tests.client.scripted import ScriptedServer


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    """A real HTTP server on 127.0.0.1 answering from a script the test sets."""
    scripted = ScriptedServer()
    scripted.start()
    yield scripted
    scripted.stop()
