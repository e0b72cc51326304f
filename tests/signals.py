"""Signal dispositions for the subprocesses that tests interrupt."""

from __future__ import annotations

import signal


def default_sigint() -> None:
    """Give a child SIGINT's default disposition (for `preexec_fn`), whatever the test run inherited.

    A test run started in the background, under nohup or by some CI runners, inherits SIGINT as
    ignored, and so would every child; a user's terminal delivers Ctrl-C, so a test that sends
    SIGINT must set this explicitly.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
