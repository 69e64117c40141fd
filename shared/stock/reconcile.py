"""Prove the books balance: every stock level against its ledger, every ledger row against its job."""

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

LEVELS = text("""
    SELECT s.id, s.on_hand, s.version, COALESCE(SUM(l.delta), 0) AS ledger_sum,
           COUNT(l.id) AS entries, COALESCE(MIN(l.version), 0) AS min_version,
           COALESCE(MAX(l.version), 0) AS max_version
    FROM stock_level s LEFT JOIN ledger_entry l ON l.stock_level_id = s.id
    GROUP BY s.id, s.on_hand, s.version""")

LEDGER_JOBS = text("""
    SELECT per_job.job_id, j.status, j.kind, j.result, j.payload, per_job.entries,
           per_job.line_count
    FROM (SELECT job_id, COUNT(*) AS entries, COUNT(DISTINCT COALESCE(line, -1)) AS line_count
          FROM ledger_entry GROUP BY job_id) per_job
    LEFT JOIN job j ON j.id = per_job.job_id""")

DUPLICATE_MOVES = text("""
    SELECT job_id, line, type, stock_level_id, COUNT(*) AS n FROM ledger_entry
    GROUP BY job_id, line, type, stock_level_id HAVING COUNT(*) > 1""")

SUCCEEDED_WITHOUT_LEDGER = text("""
    SELECT j.id FROM job j
    WHERE j.status IN ('succeeded', 'partially_failed')
      AND NOT EXISTS (SELECT 1 FROM ledger_entry l WHERE l.job_id = j.id)""")


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _level_mismatches(session: Session) -> Iterator[str]:
    for level_id, on_hand, version, total, entries, low, high in session.execute(LEVELS):
        if on_hand < 0:
            yield f"stock level {level_id}: on_hand {on_hand} is negative"
        if on_hand != total:
            yield f"stock level {level_id}: on_hand {on_hand} but ledger sums to {total}"
        if entries and (low != 1 or high != entries or version != high):
            yield (f"stock level {level_id}: versions {low}..{high} over {entries} entries, "
                   f"level says version {version}")
        if not entries and version != 0:
            yield f"stock level {level_id}: version {version} without ledger entries"


def _job_mismatches(session: Session) -> Iterator[str]:
    for job_id, status, kind, result, payload, entries, lines in session.execute(LEDGER_JOBS):
        if status not in ("succeeded", "partially_failed"):
            yield f"job {job_id}: {entries} ledger entries but job status is {status}"
            continue
        if kind == "command":
            expected = 2 if _loads(payload).get("type") == "transfer" else 1
            if entries != expected:
                yield f"job {job_id}: {entries} ledger entries, expected {expected}"
        elif lines != _loads(result)["succeeded"]:
            yield f"job {job_id}: ledger holds {lines} lines, job says {_loads(result)['succeeded']}"
    for job_id, line, kind, level_id, n in session.execute(DUPLICATE_MOVES):
        yield f"job {job_id} line {line}: {kind} on level {level_id} recorded {n} times"
    for (job_id,) in session.execute(SUCCEEDED_WITHOUT_LEDGER):
        yield f"job {job_id}: succeeded but has no ledger entries"


def find_mismatches(session: Session) -> list[str]:
    """Every way the stock, the ledger and the jobs disagree; empty when the books balance."""
    return [*_level_mismatches(session), *_job_mismatches(session)]
