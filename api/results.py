"""The shape of a job's result rows: which keys they hold (`?fields=`, `?explain=`), and their CSV columns.

A scored row's keys are sorted: `business_outcome`, `phat`, `row`, every model variable, and with
`explain` `contributions` (an object keyed by variable) and `intercept`; with an id field, `id`.
An error row holds `error`, `row` and any `id`. The worker writes the rows (training.scoring); this
module checks what a client asks for, and names the CSV columns: the same keys in the same
order, with `contributions` spread into one `contrib_<variable>` column per variable and `error`
into `error_field` and `error_message`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from api.errors import ApiError

SCORE_KEYS = ("business_outcome", "phat")
EXPLAIN_KEYS = ("contributions", "intercept")
# Every row keeps these, whatever `fields` names.
ALWAYS_KEPT = ("row", "id")
CONTRIBUTION_PREFIX = "contrib_"
ERROR_COLUMNS = ("error_field", "error_message")


def parse_explain(raw: str | None, linear: bool, model: str) -> bool:
    """Return whether a client asks for explanations (`?explain=true`); refuse them for a model that is not linear."""
    if raw is None or raw.lower() in ("false", "0"):
        return False
    if raw.lower() not in ("true", "1"):
        raise ApiError(422, "invalid_explain", "explain must be true or false.", {"explain": raw})
    if not linear:
        raise ApiError(
            422, "explain_unsupported",
            f"Model {model!r} has no linear coefficients, so its scores cannot be explained exactly.",
            {"model": model},
        )  # fmt: skip
    return True


def result_keys(variables: Sequence[str]) -> tuple[str, ...]:
    """Return every key a result row of a model with these variables may hold, error aside."""
    return (*SCORE_KEYS, *ALWAYS_KEPT, *variables, *EXPLAIN_KEYS)


def parse_fields(raw: str | None, variables: Sequence[str]) -> tuple[str, ...]:
    """Return the result keys a client keeps (`?fields=phat,business_outcome`); () keeps all of them.

    `contributions` and `intercept` are result keys too, present only with `?explain=true`.
    """
    if raw is None:
        return ()
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",")))
    allowed = result_keys(variables)
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        raise ApiError(
            422, "invalid_fields", f"fields names keys a result row does not have: {', '.join(unknown) or '(none)'}.",
            {"unknown": unknown[:20], "allowed": list(allowed)},
        )  # fmt: skip
    return names


@dataclass(frozen=True)
class Columns:
    """The CSV columns of a job's results, in order, and the keys of a row they come from."""

    names: tuple[str, ...]
    keys: tuple[str, ...]
    variables: tuple[str, ...]

    @classmethod
    def of(cls, variables: Sequence[str], fields: Sequence[str], explain: bool, with_id: bool) -> Columns:
        """Return the columns of rows with these variables, kept `fields` (all if empty), explanations and ids."""
        keys = {*SCORE_KEYS, "row", *variables, *(EXPLAIN_KEYS if explain else ())}
        if fields:
            keys &= {*fields, "row"}
        keys |= {"error", *(("id",) if with_id else ())}
        ordered = tuple(sorted(keys))
        names: list[str] = []
        for key in ordered:
            if key == "contributions":
                names += [CONTRIBUTION_PREFIX + name for name in sorted(variables)]
            elif key == "error":
                names += ERROR_COLUMNS
            else:
                names.append(key)
        return cls(tuple(names), ordered, tuple(sorted(variables)))
