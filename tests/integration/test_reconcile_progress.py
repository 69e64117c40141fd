"""cli.reconcile's progress against the test database: plain lines when its output is not a
terminal, a bar when it is; the report is the same either way."""

import io

from cli import reconcile
from shared.stock.reconcile import CHECKS


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_reconcile_says_each_check_in_a_plain_line(monkeypatch):
    monkeypatch.delenv("FORCE_TERMINAL", raising=False)
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    out = io.StringIO()
    assert reconcile.main(stream=out) == 0
    lines = out.getvalue().splitlines()
    total = len(CHECKS) + 1
    assert lines[0].startswith(f"reconcile: 1 of {total} checks: counted ")
    assert [line.split(": ", 2)[2] for line in lines[1:total]] == [
        f"{name}: 0 mismatch(es)" for name, _ in CHECKS]
    assert lines[total].startswith(f"reconcile: done, {total} of {total} checks in ")
    assert lines[-1] == "OK: the books balance"
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_reconcile_draws_a_bar_on_a_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    out = Terminal()
    assert reconcile.main(stream=out) == 0
    drawn = out.getvalue()
    assert "\x1b[" in drawn and f"{len(CHECKS) + 1}/{len(CHECKS) + 1}" in drawn
    assert "OK: the books balance" in drawn and "mismatch(es)" not in drawn
