"""Prove the books balance; exit 1 with a report on any mismatch.

    python -m cli.reconcile

Checks, for every stock level: on_hand = sum of its ledger deltas, never negative, versions 1..N
without gaps; every ledger row belongs to a succeeded (or partially failed) job; every succeeded job's
effect is in the ledger exactly once.
"""

from sqlalchemy import func, select

from shared.db import session_scope
from shared.models import Job, LedgerEntry, StockLevel
from shared.stock.reconcile import find_mismatches


def main() -> int:
    with session_scope() as session:
        mismatches = find_mismatches(session)
        levels = session.scalar(select(func.count()).select_from(StockLevel))
        entries = session.scalar(select(func.count()).select_from(LedgerEntry))
        jobs = session.scalar(select(func.count()).select_from(Job))
    print(f"checked {levels} stock levels, {entries} ledger entries, {jobs} jobs")
    for line in mismatches:
        print(f"MISMATCH {line}")
    print("OK: the books balance" if not mismatches else f"{len(mismatches)} mismatch(es)")
    return 1 if mismatches else 0


if __name__ == "__main__":
    raise SystemExit(main())
