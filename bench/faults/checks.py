"""What the campaign checks, straight in the database (SQL, never the API): the books after each
fault, and the fate of every job a client was told was accepted."""

import json
from collections import Counter
from collections.abc import Iterable, Iterator

from sqlalchemy import Engine, bindparam, text
from sqlalchemy.orm import Session

from bench.faults.traffic import Tally
from shared.stock.reconcile import find_mismatches

TERMINAL = ("succeeded", "failed", "partially_failed")
SHOWN = 5  # failures quoted per invariant; the count says how many there were

# Each: a name and a query whose every row is a breach of it.
INVARIANTS = {
    "no negative stock": "SELECT id, on_hand FROM stock_level WHERE on_hand < 0",
    "available >= 0 (reserved within on hand)":
        "SELECT id, on_hand, reserved FROM stock_level WHERE reserved < 0 OR reserved > on_hand",
    "reserved = sum of ledger reserved deltas": """
        SELECT s.id, s.reserved, COALESCE(SUM(l.reserved_delta), 0) AS ledger
        FROM stock_level s LEFT JOIN ledger_entry l ON l.stock_level_id = s.id
        GROUP BY s.id, s.reserved HAVING s.reserved <> COALESCE(SUM(l.reserved_delta), 0)""",
    "reserved = sum of active holds": """
        SELECT s.id, s.reserved, COALESCE(SUM(r.quantity - r.committed), 0) AS held
        FROM stock_level s LEFT JOIN reservation r ON r.stock_level_id = s.id AND r.status = 'active'
        GROUP BY s.id, s.reserved HAVING s.reserved <> COALESCE(SUM(r.quantity - r.committed), 0)""",

    "on_hand = sum of ledger deltas": """
        SELECT s.id, s.on_hand, COALESCE(SUM(l.delta), 0) AS ledger
        FROM stock_level s LEFT JOIN ledger_entry l ON l.stock_level_id = s.id
        GROUP BY s.id, s.on_hand HAVING s.on_hand <> COALESCE(SUM(l.delta), 0)""",
    "versions 1..n without gaps": """
        SELECT s.id, s.version, COUNT(l.id) AS entries, COUNT(DISTINCT l.version) AS versions,
               MIN(l.version) AS low, MAX(l.version) AS high
        FROM stock_level s LEFT JOIN ledger_entry l ON l.stock_level_id = s.id
        GROUP BY s.id, s.version
        HAVING COUNT(l.id) <> s.version OR COUNT(DISTINCT l.version) <> COUNT(l.id)
            OR (COUNT(l.id) > 0 AND (MIN(l.version) <> 1 OR MAX(l.version) <> s.version))""",
    # Each entry's balance is the previous entry's plus its own delta, in version order.
    "on_hand_after chains": """
        SELECT stock_level_id, version, delta, on_hand_after, previous FROM (
            SELECT stock_level_id, version, delta, on_hand_after,
                   LAG(on_hand_after) OVER (PARTITION BY stock_level_id ORDER BY version) AS previous
            FROM ledger_entry) chain
        WHERE on_hand_after <> COALESCE(previous, 0) + delta""",
    "no job applied twice": """
        SELECT job_id, line, type, stock_level_id, COUNT(*) AS n FROM ledger_entry
        GROUP BY job_id, line, type, stock_level_id, reservation_id HAVING COUNT(*) > 1""",
    "one job per (api key, Idempotency-Key)": """
        SELECT api_key_id, idempotency_key, COUNT(*) AS n FROM job WHERE idempotency_key IS NOT NULL
        GROUP BY api_key_id, idempotency_key HAVING COUNT(*) > 1""",
}

_JOBS = text("SELECT id, status, error FROM job WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True))
# The campaign's Idempotency-Keys are UUIDs, unique across its API keys.
_KEYED = text("SELECT idempotency_key, id FROM job WHERE idempotency_key IN :keys").bindparams(
    bindparam("keys", expanding=True))
_UNFINISHED = text("SELECT id FROM job WHERE status IN ('queued', 'running')")
# Also the jobs no client heard of: accepted while the API died before answering, say.
_UNFINISHED_FOR_LONG = text(
    "SELECT id, status, submitted_at FROM job WHERE status IN ('queued', 'running') "
    "AND submitted_at < UTC_TIMESTAMP(6) - INTERVAL :seconds SECOND ORDER BY submitted_at")
# Reservations the workers should have released by now (their expiry is a job like any other).
_HELD_PAST_EXPIRY = text(
    "SELECT id, expires_at FROM reservation WHERE status = 'active' "
    "AND expires_at < UTC_TIMESTAMP(6) - INTERVAL :seconds SECOND ORDER BY expires_at")


def _chunks(items: list[str], size: int = 2000) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def unfinished(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(_UNFINISHED))


def broken_invariants(engine: Engine, bound: float) -> dict[str, list[str]]:
    """Each invariant that does not hold, with the rows that breach it (the first few). A job
    accepted longer than `bound` seconds ago must be terminal."""
    broken: dict[str, list[str]] = {}
    with engine.connect() as conn:
        found = {name: conn.execute(text(query)).all() for name, query in INVARIANTS.items()}
        found["no job unfinished past the recovery bound"] = conn.execute(
            _UNFINISHED_FOR_LONG, {"seconds": bound}).all()
        found["no reservation held past its expiry and the recovery bound"] = conn.execute(
            _HELD_PAST_EXPIRY, {"seconds": bound}).all()
    for name, rows in found.items():
        if rows:
            broken[name] = [f"{len(rows)} rows"] + [str(tuple(r)) for r in rows[:SHOWN]]
    with Session(engine) as session:
        mismatches = find_mismatches(session)
    if mismatches:
        broken["reconcile (shared.stock.reconcile)"] = [f"{len(mismatches)} mismatches", *mismatches[:SHOWN]]
    return broken


def job_fates(engine: Engine, job_ids: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """Status and problem type of each of these jobs that has a row."""
    fates: dict[str, tuple[str, str | None]] = {}
    with engine.connect() as conn:
        for chunk in _chunks(list(job_ids)):
            for job_id, status, error in conn.execute(_JOBS, {"ids": chunk}):
                error = json.loads(error) if isinstance(error, str) else error
                # A failed independent batch (every line failed) has its problems on its lines.
                fates[job_id] = (status, (error or {}).get("type", "every line of the batch failed"))
    return fates


def idempotency_breaches(engine: Engine, tally: Tally) -> list[str]:
    """Keys whose answers named more than one job, or another job than the one the database holds
    for the key: each is a request that made, or was told of, a second job."""
    breaches = [f"key {key}: answers named {sorted(ids)}"
                for key, ids in tally.answers.items() if len(ids) > 1]
    with engine.connect() as conn:
        for chunk in _chunks(list(tally.answers)):
            held = dict(conn.execute(_KEYED, {"keys": chunk}).all())
            breaches += [f"key {key}: answered {sorted(tally.answers[key])}, database holds {held.get(key)}"
                         for key in chunk if held.get(key) not in tally.answers[key]]
    return breaches


def account(engine: Engine, tally: Tally) -> dict[str, object]:
    """Every accepted job's fate: applied, failed for a business reason, lost (a 202 but no row),
    stuck (not terminal yet)."""
    fates = job_fates(engine, tally.accepted)
    statuses = Counter(status for status, _ in fates.values())
    problems = Counter(problem for status, problem in fates.values() if status == "failed")
    return {"accepted": len(tally.accepted),
            "applied": statuses["succeeded"] + statuses["partially_failed"],
            "business_failed": statuses["failed"],
            "lost": sorted(set(tally.accepted) - set(fates)),
            "stuck": sorted(j for j, (status, _) in fates.items() if status not in TERMINAL),
            "problems": dict(problems)}
