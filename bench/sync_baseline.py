"""The classic design, for comparison: a minimal synchronous FastAPI app that applies each request in
its own `SELECT ... FOR UPDATE` transaction on the same schema and answers when it has committed.

    uvicorn bench.sync_baseline:app --port 8766 --workers 2
"""

from typing import Any

from fastapi import FastAPI, HTTPException
from sqlalchemy import text

from shared.db import get_engine
from shared.models import utcnow

app = FastAPI(title="synchronous baseline")

LOCK = text("SELECT s.id, s.on_hand, s.version FROM stock_level s "
            "JOIN warehouse w ON w.id = s.warehouse_id JOIN product p ON p.id = s.product_id "
            "WHERE w.code = :w AND p.sku = :s FOR UPDATE")
CREATE = text("INSERT IGNORE INTO stock_level (warehouse_id, product_id, on_hand, version, updated_at) "
              "SELECT w.id, p.id, 0, 0, :t FROM warehouse w, product p WHERE w.code = :w AND p.sku = :s")
JOB = text("INSERT INTO job (id, kind, status, payload, slot, attempts, submitted_at, completed_at) "
           "VALUES (UUID(), 'command', 'succeeded', '{}', 0, 0, :t, :t) RETURNING id")
LEDGER = text("INSERT INTO ledger_entry (stock_level_id, type, delta, on_hand_after, version, job_id, "
              "recorded_at) VALUES (:l, :y, :d, :a, :v, :j, :t)")
LEVEL = text("UPDATE stock_level SET on_hand = :a, version = :v, updated_at = :t WHERE id = :l")


@app.post("/v1/commands")
def apply(command: dict[str, Any]) -> dict[str, int]:
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
