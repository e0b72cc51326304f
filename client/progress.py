"""The command line's progress bar: bytes while the input uploads, then rows as they are scored, ending in one line."""

from __future__ import annotations

from types import TracebackType
from typing import TextIO

from tqdm import tqdm


class ProgressBar:
    """One tqdm bar for a prediction: `uploaded` moves it in bytes, then `scored` in rows, until `close`.

    tqdm draws the bar again when it is closed, so the bar's last state is drawn there only: drawn
    on reaching the total as well, the final line would show twice.
    """

    def __init__(self, rows: int | None, file: TextIO) -> None:
        """`rows`: of the whole input; None takes the rows of the job scored (`scored`'s second argument)."""
        self.rows = rows
        self.scoring = False
        self.bar = tqdm(total=0, desc="uploading", unit="B", unit_scale=True, unit_divisor=1024, file=file)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def uploaded(self, sent: int, size: int) -> None:
        """Show the bytes of the current upload sent so far."""
        if self.scoring:
            return
        if self.bar.total != size:
            self.bar.reset(total=size)
        self._move(sent, size)

    def scored(self, rows_done: int, rows: int) -> None:
        """Show the rows scored so far, of every row of the input."""
        if not self.scoring:
            self.scoring = True
            self.rows = rows if self.rows is None else self.rows
            self.bar.unit, self.bar.unit_scale = "row", False
            self.bar.set_description("scoring", refresh=False)
            self.bar.reset(total=self.rows)
        self._move(rows_done, self.rows or rows)

    def close(self) -> None:
        """Draw the final line, once."""
        self.bar.close()

    def _move(self, done: int, total: int) -> None:
        if done >= total:
            self.bar.n = total  # drawn by `close`
        elif done > self.bar.n:
            self.bar.update(done - self.bar.n)
        else:
            self.bar.n = done  # a retried upload starts again
