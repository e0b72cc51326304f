"""Numbers in a query string, strictly: ASCII digits only, as a client's program writes them.

Python's int() and float() also read '5_000', '+5', ' 5 ', 'nan', 'infinity' and the digits of
any script (Arabic-Indic '\u0665' is 5). A query value is machine-written, so anything but the plain
form is refused: two spellings of one value would be two cache keys and two log lines for one request.
"""

from __future__ import annotations

import re

# int() refuses more digits than 4,300 (Python's guard against quadratic conversion).
_INTEGER = re.compile(r"[0-9]{1,4300}")
# What repr(float) writes, e.g. 0.5, 30.0, 1e-05, -0.0; no plus sign, underscore, nan or inf.
_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def integer(raw: str) -> int | None:
    """Return the value of a plain ASCII integer, or None for anything else."""
    return int(raw) if _INTEGER.fullmatch(raw) else None


def decimal(raw: str) -> float | None:
    """Return the value of a plain ASCII decimal (an exponent allowed), or None for anything else."""
    return float(raw) if _DECIMAL.fullmatch(raw) else None
