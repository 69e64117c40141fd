"""Progress of the long command-line runs (cli.import_csv, cli.reconcile).

On a terminal: bars drawn by `rich`, redrawn in place, with the count, the elapsed time and an
estimate of the rest. Anywhere else (a pipe, a file, a CI log): plain lines, one per step (and,
while rows are counted, one every ten seconds at most) and one when a task ends, so a log holds no
carriage returns or escape codes and can be grepped.
Whether it is a terminal is rich's own decision for the stream (`Console.is_terminal`, which also
honours FORCE_TERMINAL and TTY_INTERACTIVE), and a dumb terminal (TERM=dumb) gets plain lines.
"""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Task(Protocol):
    def advance(self, amount: int = 1, note: str = "") -> None:
        """Count `amount` more units done; `note` says what was just done (plain lines show it)."""


class _Bar:
    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress, self._task = progress, task

    def advance(self, amount: int = 1, note: str = "") -> None:
        self._progress.advance(self._task, amount)


# Plain lines: a step with a note gets its line; counting without one, a line this often at most.
PLAIN_EVERY_SECONDS = 10.0


class _Lines:
    def __init__(self, stream: IO[str], description: str, total: int | None, unit: str) -> None:
        self._stream, self._description, self._total, self._unit = stream, description, total, unit
        self.done = 0
        self._last_line = time.monotonic()

    def advance(self, amount: int = 1, note: str = "") -> None:
        self.done += amount
        if note or time.monotonic() - self._last_line >= PLAIN_EVERY_SECONDS:
            self.line(f"{self.count()}{f': {note}' if note else ''}")

    def count(self) -> str:
        of = f" of {self._total}" if self._total is not None else ""
        return f"{self.done}{of} {self._unit}"

    def line(self, text: str) -> None:
        print(f"{self._description}: {text}", file=self._stream, flush=True)
        self._last_line = time.monotonic()


def is_interactive(stream: IO[str]) -> bool:
    console = Console(file=stream)
    return console.is_terminal and not console.is_dumb_terminal


@contextmanager
def task(description: str, total: int | None, unit: str, *, stream: IO[str] | None = None,
         interactive: bool | None = None) -> Iterator[Task]:
    """A task of `total` units (None: not known ahead), shown on `stream` (stdout by default) until
    the block ends."""
    stream = stream if stream is not None else sys.stdout
    if interactive is None:
        interactive = is_interactive(stream)
    if not interactive:
        lines = _Lines(stream, description, total, unit)
        started = time.monotonic()
        yield lines
        lines.line(f"done, {lines.count()} in {time.monotonic() - started:.1f} s")
        return
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn() if total is not None else TextColumn("{task.completed}"),
               TextColumn(unit), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(file=stream)) as progress:
        task_id = progress.add_task(description, total=total)
        yield _Bar(progress, task_id)
        if total is None:  # the count is known now: the bar ends full, not pulsing
            progress.update(task_id, total=progress.tasks[0].completed)
