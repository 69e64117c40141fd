"""Prove the books balance: every stock level against its ledger and its reservations, every
ledger row against its job."""

import json
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

LEVELS = text("""
    SELECT s.id, s.on_hand, s.version, COALESCE(SUM(l.delta), 0) AS ledger_sum,
           COUNT(l.id) AS entries, COALESCE(MIN(l.version), 0) AS min_version,
           COALESCE(MAX(l.version), 0) AS max_version,
           s.reserved, COALESCE(SUM(l.reserved_delta), 0) AS reserved_sum
    FROM stock_level s LEFT JOIN ledger_entry l ON l.stock_level_id = s.id
    GROUP BY s.id, s.on_hand, s.version, s.reserved""")

# What a level holds must be what its active reservations hold.
HELD = text("""
    SELECT s.id, s.reserved, COALESCE(SUM(r.quantity - r.committed), 0) AS held
    FROM stock_level s LEFT JOIN reservation r ON r.stock_level_id = s.id AND r.status = 'active'
    GROUP BY s.id, s.reserved
    HAVING s.reserved <> COALESCE(SUM(r.quantity - r.committed), 0)""")

# A reserve repeated for a reservation that exists, and an expiry that found the reservation
# already ended, succeed and change nothing: no ledger entry.
MAY_CHANGE_NOTHING = ("reserve", "expire")

LEDGER_JOBS = text("""
    SELECT per_job.job_id, j.status, j.kind, j.result, j.payload, per_job.entries,
           per_job.line_count
    FROM (SELECT job_id, COUNT(*) AS entries, COUNT(DISTINCT COALESCE(line, -1)) AS line_count
          FROM ledger_entry GROUP BY job_id) per_job
    LEFT JOIN job j ON j.id = per_job.job_id""")

DUPLICATE_MOVES = text("""
    SELECT job_id, line, type, stock_level_id, COUNT(*) AS n FROM ledger_entry
    GROUP BY job_id, line, type, stock_level_id, reservation_id HAVING COUNT(*) > 1""")

SUCCEEDED_WITHOUT_LEDGER = text("""
    SELECT j.id, j.payload FROM job j
    WHERE j.status IN ('succeeded', 'partially_failed')
      AND NOT EXISTS (SELECT 1 FROM ledger_entry l WHERE l.job_id = j.id)""")


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _level_mismatches(session: Session) -> Iterator[str]:
    for level_id, on_hand, version, total, entries, low, high, reserved, reserved_total \
            in session.execute(LEVELS):
        if on_hand < 0:
            yield f"stock level {level_id}: on_hand {on_hand} is negative"
        if reserved < 0 or reserved > on_hand:
            yield f"stock level {level_id}: {reserved} reserved of {on_hand} on hand"
        if on_hand != total:
            yield f"stock level {level_id}: on_hand {on_hand} but ledger sums to {total}"
        if reserved != reserved_total:
            yield f"stock level {level_id}: reserved {reserved} but ledger sums to {reserved_total}"
        if entries and (low != 1 or high != entries or version != high):
            yield (f"stock level {level_id}: versions {low}..{high} over {entries} entries, "
                   f"level says version {version}")
        if not entries and version != 0:
            yield f"stock level {level_id}: version {version} without ledger entries"
    for level_id, reserved, held in session.execute(HELD):
        yield f"stock level {level_id}: reserved {reserved} but its active reservations hold {held}"


def _job_mismatches(session: Session) -> Iterator[str]:
    for job_id, status, kind, result, payload, entries, lines in session.execute(LEDGER_JOBS):
        if status not in ("succeeded", "partially_failed"):
            yield f"job {job_id}: {entries} ledger entries but job status is {status}"
            continue
        if kind == "command":
            expected = _expected_entries(_loads(payload), _loads(result))
            if entries != expected:
                yield f"job {job_id}: {entries} ledger entries, expected {expected}"
        elif lines != _loads(result)["succeeded"] and not (
                lines < _loads(result)["succeeded"] and _names(_loads(payload), MAY_CHANGE_NOTHING)):
            yield f"job {job_id}: ledger holds {lines} lines, job says {_loads(result)['succeeded']}"
    for job_id, line, kind, level_id, n in session.execute(DUPLICATE_MOVES):
        yield f"job {job_id} line {line}: {kind} on level {level_id} recorded {n} times"
    for job_id, payload in session.execute(SUCCEEDED_WITHOUT_LEDGER):
        if not _names(_loads(payload), MAY_CHANGE_NOTHING):
            yield f"job {job_id}: succeeded but has no ledger entries"


def _names(payload: Any, types: tuple[str, ...]) -> bool:
    """Whether a job's payload (a command or a batch) has a command of one of these types."""
    commands = payload.get("commands", [payload]) if isinstance(payload, dict) else []
    return any(isinstance(c, dict) and c.get("type") in types for c in commands)


def _expected_entries(command: dict[str, Any], result: dict[str, Any] | None) -> int:
    """Ledger entries of a succeeded single command: a transfer's two, a count's one plus a release
    per reservation it let go, an expiry's one, and one for anything else."""
    kind = command.get("type")
    if kind == "transfer":
        return 2
    if kind == "count":
        return 1 + len((result or {}).get("released_reservations", []))
    if kind == "expire":
        expired: int = (result or {}).get("expired", 1)
        return expired
    return 1


# The checks in the order they run, named so that cli/reconcile.py can show which one it is in.
CHECKS: tuple[tuple[str, Callable[[Session], Iterator[str]]], ...] = (
    ("stock levels against their ledger and reservations", _level_mismatches),
    ("ledger entries against their jobs", _job_mismatches),
)


def find_mismatches(session: Session) -> list[str]:
    """Every way the stock, the ledger and the jobs disagree; empty when the books balance."""
    return [mismatch for _, check in CHECKS for mismatch in check(session)]
