"""Prove the books balance; exit 1 with a report on any mismatch.

    python -m cli.reconcile

Checks, for every stock level: on_hand = sum of its ledger deltas, never negative, versions 1..N
without gaps, reserved = sum of its reserved deltas = what its active reservations hold; every ledger
row belongs to a succeeded (or partially failed) job; every succeeded job's effect is in the ledger
exactly once. On a terminal a bar shows which check runs (each is one query over a whole table, so
the bar moves a check at a time); elsewhere each check ends with a plain line.
"""

import sys
from typing import IO

from sqlalchemy import func, select

from cli.progress import task
from shared.db import session_scope
from shared.models import Job, LedgerEntry, StockLevel
from shared.stock.reconcile import CHECKS


def main(stream: IO[str] | None = None) -> int:
    out = stream if stream is not None else sys.stdout
    mismatches: list[str] = []
    with session_scope() as session, task("reconcile", len(CHECKS) + 1, "checks", stream=out) as progress:
        levels = session.scalar(select(func.count()).select_from(StockLevel))
        entries = session.scalar(select(func.count()).select_from(LedgerEntry))
        jobs = session.scalar(select(func.count()).select_from(Job))
        progress.advance(note=f"counted {levels} stock levels, {entries} ledger entries, {jobs} jobs")
        for name, check in CHECKS:
            found = list(check(session))
            mismatches += found
            progress.advance(note=f"{name}: {len(found)} mismatch(es)")
    print(f"checked {levels} stock levels, {entries} ledger entries, {jobs} jobs", file=out)
    for line in mismatches:
        print(f"MISMATCH {line}", file=out)
    print("OK: the books balance" if not mismatches else f"{len(mismatches)} mismatch(es)", file=out)
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
