"""The classic design, for comparison: a minimal synchronous FastAPI app that applies each request in
its own `SELECT ... FOR UPDATE` transaction on the same schema and answers when it has committed.
It knows receive and issue, and reserve and commit (bench/reservations.py).

    uvicorn bench.sync_baseline:app --port 8766 --workers 2
"""

from datetime import timedelta
from typing import Any

from fastapi import FastAPI, HTTPException
from sqlalchemy import text

from shared.db import get_engine
from shared.models import utcnow

app = FastAPI(title="synchronous baseline")

LOCK = text("SELECT s.id, s.on_hand, s.version, s.reserved FROM stock_level s "
            "JOIN warehouse w ON w.id = s.warehouse_id JOIN product p ON p.id = s.product_id "
            "WHERE w.code = :w AND p.sku = :s FOR UPDATE")
CREATE = text("INSERT IGNORE INTO stock_level (warehouse_id, product_id, on_hand, version, updated_at) "
              "SELECT w.id, p.id, 0, 0, :t FROM warehouse w, product p WHERE w.code = :w AND p.sku = :s")
JOB = text("INSERT INTO job (id, kind, status, payload, slot, attempts, submitted_at, completed_at) "
           "VALUES (UUID(), 'command', 'succeeded', '{}', 0, 0, :t, :t) RETURNING id")
LEDGER = text("INSERT INTO ledger_entry (stock_level_id, type, delta, on_hand_after, version, job_id, "
              "recorded_at) VALUES (:l, :y, :d, :a, :v, :j, :t)")
LEVEL = text("UPDATE stock_level SET on_hand = :a, version = :v, updated_at = :t WHERE id = :l")


RESERVATION = text("INSERT INTO reservation (api_key_id, client_id, stock_level_id, quantity, committed, "
                   "status, expires_at, slot, job_id, created_at) "
                   "VALUES (NULL, :c, :l, :q, 0, 'active', :e, 0, :j, :t)")
HELD = text("SELECT r.id, r.stock_level_id, r.quantity - r.committed AS held, r.status FROM reservation r "
            "WHERE r.api_key_id IS NULL AND r.client_id = :c")
LOCK_LEVEL = text("SELECT on_hand, version, reserved FROM stock_level WHERE id = :l FOR UPDATE")
LOCK_HELD = text("SELECT quantity - committed, status FROM reservation WHERE id = :r FOR UPDATE")
COMMITTED = text("UPDATE reservation SET committed = quantity, status = 'committed', ended_at = :t "
                 "WHERE id = :r")
HOLD_LEDGER = text("INSERT INTO ledger_entry (stock_level_id, type, delta, on_hand_after, reserved_delta, "
                   "reserved_after, version, job_id, recorded_at) "
                   "VALUES (:l, :y, :d, :a, :rd, :ra, :v, :j, :t)")
HOLD_LEVEL = text("UPDATE stock_level SET on_hand = :a, reserved = :ra, version = :v, updated_at = :t "
                  "WHERE id = :l")


@app.post("/v1/commands")
def apply(command: dict[str, Any]) -> dict[str, int]:
    if command["type"] == "reserve":
        return _reserve(command)
    if command["type"] == "commit":
        return _commit(command)
    delta = command["quantity"] if command["type"] == "receive" else -command["quantity"]
    params = {"w": command["warehouse"], "s": command["sku"], "t": utcnow()}
    with get_engine().begin() as conn:
        row = conn.execute(LOCK, params).first()
        if row is None:
            conn.execute(CREATE, params)
            row = conn.execute(LOCK, params).first()
        if row.on_hand + delta < 0:
            raise HTTPException(409, "insufficient stock")
        job_id = conn.execute(JOB, params).scalar()
        after, version = row.on_hand + delta, row.version + 1
        conn.execute(LEDGER, {"l": row.id, "y": command["type"], "d": delta, "a": after, "v": version,
                              "j": job_id, "t": params["t"]})
        conn.execute(LEVEL, {"a": after, "v": version, "t": params["t"], "l": row.id})
    return {"on_hand_after": after, "version_after": version}


def _reserve(command: dict[str, Any]) -> dict[str, int]:
    params = {"w": command["warehouse"], "s": command["sku"], "t": utcnow()}
    with get_engine().begin() as conn:
        row = conn.execute(LOCK, params).first()
        if row is None or row.on_hand - row.reserved < command["quantity"]:
            raise HTTPException(409, "insufficient stock")
        job_id = conn.execute(JOB, params).scalar()
        conn.execute(RESERVATION, {"c": command["reservation"], "l": row.id, "q": command["quantity"],
                                   "e": params["t"] + timedelta(seconds=command["expires_in"]), "j": job_id,
                                   "t": params["t"]})
        return _hold_moved(conn, row.id, "reserve", 0, command["quantity"], row, job_id, params["t"])


def _commit(command: dict[str, Any]) -> dict[str, int]:
    now = utcnow()
    with get_engine().begin() as conn:
        found = conn.execute(HELD, {"c": command["reservation"]}).first()
        if found is None:
            raise HTTPException(404, "unknown reservation")
        level = conn.execute(LOCK_LEVEL, {"l": found.stock_level_id}).first()  # the level first, as ever
        held, status = conn.execute(LOCK_HELD, {"r": found.id}).first()
        if status != "active":
            raise HTTPException(409, f"reservation {status}")
        job_id = conn.execute(JOB, {"t": now}).scalar()
        conn.execute(COMMITTED, {"r": found.id, "t": now})
        return _hold_moved(conn, found.stock_level_id, "commit", -held, -held, level, job_id, now)


def _hold_moved(conn: Any, level_id: int, kind: str, delta: int, reserved_delta: int, level: Any,
                job_id: str, now: Any) -> dict[str, int]:
    after, reserved, version = level.on_hand + delta, level.reserved + reserved_delta, level.version + 1
    conn.execute(HOLD_LEDGER, {"l": level_id, "y": kind, "d": delta, "a": after, "rd": reserved_delta,
                               "ra": reserved, "v": version, "j": job_id, "t": now})
    conn.execute(HOLD_LEVEL, {"a": after, "ra": reserved, "v": version, "t": now, "l": level_id})
    return {"on_hand_after": after, "reserved_after": reserved, "version_after": version}
