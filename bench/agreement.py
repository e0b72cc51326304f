"""Correctness as a side effect of the benchmark: every answered row against in-process scoring."""

from __future__ import annotations

import threading

import numpy as np

from bench.load import Results

TOLERANCE = 1e-12


class Agreement:
    """Compares each side's phat and business_outcome with in-process `score_records` of the same records.

    Row r of a job whose first record is record k is record (k + r) mod n of the reference.
    """

    def __init__(self, phat: np.ndarray, outcome: np.ndarray) -> None:
        self.phat = phat
        self.outcome = outcome
        self.seen: dict[str, np.ndarray] = {}
        self.max_diff: dict[str, float] = {}
        self.rows: dict[str, int] = {}
        self.problems: list[str] = []
        self._lock = threading.Lock()

    def check(self, side: str, first: int, results: Results) -> None:
        """Compare one job's result rows with the reference."""
        n = len(results)
        nan = float("nan")
        phat = np.fromiter((row.get("phat", nan) for row in results), float, n)
        outcome = np.fromiter((row.get("business_outcome", -1) for row in results), int, n)
        numbers = np.fromiter((row.get("row", -1) for row in results), int, n)
        index = (first + np.arange(n)) % len(self.phat)
        diff = float(np.max(np.abs(phat - self.phat[index]))) if n else 0.0
        with self._lock:
            if not np.array_equal(numbers, np.arange(n)):
                self.problems.append(f"{side}: rows out of order or missing in a job of {n}")
            if np.isnan(phat).any():
                self.problems.append(f"{side}: {int(np.isnan(phat).sum())} rows without phat in a job of {n}")
            mismatched = int(np.sum(outcome != self.outcome[index]))
            if mismatched:
                self.problems.append(f"{side}: {mismatched} business_outcome values differ in a job of {n}")
            seen = self.seen.setdefault(side, np.full(len(self.phat), nan))
            seen[index] = phat
            self.max_diff[side] = max(self.max_diff.get(side, 0.0), diff)
            self.rows[side] = self.rows.get(side, 0) + n

    def between(self, side: str, other: str) -> float | None:
        """Return the largest phat difference between two sides on the records both answered."""
        if side not in self.seen or other not in self.seen:
            return None
        diff = np.abs(self.seen[side] - self.seen[other])
        both = ~np.isnan(diff)
        return float(diff[both].max()) if both.any() else None

    def ok(self) -> bool:
        """Return whether every row compared agrees to within the tolerance."""
        return not self.problems and all(diff <= TOLERANCE for diff in self.max_diff.values())

    def report(self) -> list[str]:
        """Return lines that say what was compared and how far apart it was."""
        lines = [
            f"{side}: {self.rows[side]:,} rows, max |phat - in-process| = {self.max_diff[side]:.3g}"
            for side in self.max_diff
        ]
        between = self.between("project", "baseline")
        if between is not None:
            lines.append(f"project vs baseline on the same records: max |phat difference| = {between:.3g}")
        lines += self.problems[:10]
        verdict = "OK" if self.ok() else "FAILED"
        lines.append(f"agreement {verdict}: tolerance {TOLERANCE:g}")
        return lines
