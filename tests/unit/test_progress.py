"""cli/progress.py: bars on a terminal, plain lines anywhere else."""

import io

import pytest

from cli import progress
from cli.progress import is_interactive, task


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch):
    """rich reads these to decide on its own; the tests decide by the stream alone."""
    for name in ("FORCE_TERMINAL", "TTY_INTERACTIVE", "TTY_COMPATIBLE", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")


def test_a_pipe_or_a_file_gets_plain_lines_one_per_step():
    out = io.StringIO()
    with task("stock", 30, "lines", stream=out) as t:
        for n, lines in enumerate((7, 7, 7, 7, 2), 1):
            t.advance(lines, f"batch {n} of 5 applied")
    lines = out.getvalue().splitlines()
    assert lines[:5] == [f"stock: {done} of 30 lines: batch {n} of 5 applied"
                         for n, done in enumerate((7, 14, 21, 28, 30), 1)]
    assert lines[5].startswith("stock: done, 30 of 30 lines in ") and lines[5].endswith(" s")
    assert len(lines) == 6
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_counting_without_notes_is_not_a_line_per_row(monkeypatch):
    out = io.StringIO()
    with task("checking stock.csv", None, "rows", stream=out) as t:
        for _ in range(10_000):
            t.advance()
    assert out.getvalue().splitlines() == [out.getvalue().splitlines()[0]]
    assert out.getvalue().startswith("checking stock.csv: done, 10000 rows in ")

    monkeypatch.setattr(progress, "PLAIN_EVERY_SECONDS", 0.0)  # a slow file: a line now and then
    out = io.StringIO()
    with task("checking stock.csv", None, "rows", stream=out) as t:
        t.advance()
        t.advance()
    assert out.getvalue().splitlines()[:2] == ["checking stock.csv: 1 rows", "checking stock.csv: 2 rows"]


def test_a_task_that_fails_does_not_say_done():
    out = io.StringIO()
    with pytest.raises(RuntimeError), task("stock", 10, "lines", stream=out) as t:
        t.advance(5, "batch 1 of 2 applied")
        raise RuntimeError("database gone")
    assert out.getvalue() == "stock: 5 of 10 lines: batch 1 of 2 applied\n"


def test_only_a_real_terminal_is_interactive(monkeypatch):
    assert not is_interactive(io.StringIO())
    assert is_interactive(Terminal())
    monkeypatch.setenv("TERM", "dumb")
    assert not is_interactive(Terminal())


def test_a_terminal_gets_a_bar_redrawn_in_place():
    out = Terminal()
    with task("stock", 30, "lines", stream=out) as t:
        t.advance(30, "batch 1 of 1 applied")
    drawn = out.getvalue()
    assert "\x1b[" in drawn and "\r" in drawn
    assert "30/30" in drawn and "lines" in drawn
    assert "batch 1 of 1" not in drawn  # the bar says it; no line per step
