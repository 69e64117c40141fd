"""A realistic amount of history, inserted fast: 20 warehouses, 2,000 products, 10,000 stock levels
and 200,000 ledger entries from 20,000 finished batch jobs, plus a few jobs still waiting."""

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Table, insert

from shared.models import ApiKey, Job, JobLine, LedgerEntry, Product, StockLevel, Warehouse

WAREHOUSES, PRODUCTS, PRODUCTS_PER_WAREHOUSE = 20, 2_000, 500
LEVELS = WAREHOUSES * PRODUCTS_PER_WAREHOUSE
LEDGER_ROWS, LINES_PER_JOB = 200_000, 10
WAITING_JOBS = 40
START = datetime(2026, 1, 1)
# A ledger's mix: mostly receipts and issues, some adjustments, counts and transfers.
TYPES = ["receive"] * 40 + ["issue"] * 40 + ["adjust"] * 8 + ["count"] * 4 + ["transfer_out"] * 4 \
    + ["transfer_in"] * 4


def _chunks(rows: Iterator[dict[str, Any]], size: int = 5_000) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _insert(conn: Connection, table: Table, rows: Iterator[dict[str, Any]]) -> None:
    # executemany of an INSERT: pymysql sends each chunk as one multi-row statement.
    for chunk in _chunks(rows):
        conn.execute(insert(table), chunk)


def level_of(row: int) -> int:
    """Ledger row n (0-based) moves level n % LEVELS: every level gets a long, interleaved history."""
    return row % LEVELS + 1


def fill(conn: Connection) -> None:
    rng = random.Random(7)
    conn.execute(insert(ApiKey.__table__), [{"id": 1, "name": "history", "prefix": "000000000000",
                                             "secret_hash": "x", "scopes": "admin", "created_at": START}])
    _insert(conn, Warehouse.__table__, ({"id": w, "code": f"WH-{w:02d}", "name": f"Warehouse {w}",
                                         "active": True, "created_at": START, "updated_at": START}
                                        for w in range(1, WAREHOUSES + 1)))
    _insert(conn, Product.__table__, ({"id": p, "sku": f"SKU-{p:05d}", "name": f"Product {p}",
                                       "unit": "ea", "created_at": START, "updated_at": START}
                                      for p in range(1, PRODUCTS + 1)))
    versions = LEDGER_ROWS // LEVELS
    _insert(conn, StockLevel.__table__, (
        {"id": level, "warehouse_id": (level - 1) // PRODUCTS_PER_WAREHOUSE + 1,
         "product_id": ((level - 1) * 7) % PRODUCTS + 1, "on_hand": 100, "version": versions,
         "updated_at": START} for level in range(1, LEVELS + 1)))
    jobs = LEDGER_ROWS // LINES_PER_JOB
    _insert(conn, Job.__table__, (
        {"id": job_id(j), "kind": "batch", "mode": "independent", "status": "succeeded",
         "payload": {}, "slot": j % 2, "attempts": 1, "api_key_id": 1,
         "result": {"total": LINES_PER_JOB, "succeeded": LINES_PER_JOB, "failed": 0},
         "submitted_at": START + timedelta(seconds=j), "completed_at": START + timedelta(seconds=j)}
        for j in range(jobs)))
    _insert(conn, Job.__table__, (
        {"id": f"waiting-{j:05d}", "kind": "command", "status": "queued" if j % 4 else "running",
         "payload": {}, "slot": j % 2, "attempts": 0, "api_key_id": 1,
         "submitted_at": START + timedelta(days=30, seconds=j)} for j in range(WAITING_JOBS)))
    _insert(conn, JobLine.__table__, ({"job_id": job_id(j), "line": 3, "error": {"type": "x"}}
                                      for j in range(0, jobs, 50)))
    _insert(conn, LedgerEntry.__table__, (
        {"id": n + 1, "stock_level_id": level_of(n), "type": rng.choice(TYPES), "delta": 1,
         "on_hand_after": 100, "version": n // LEVELS + 1, "job_id": job_id(n // LINES_PER_JOB),
         "line": n % LINES_PER_JOB, "reference": None, "reason": None, "api_key_id": 1,
         "recorded_at": START + timedelta(seconds=n // LINES_PER_JOB)}
        for n in range(LEDGER_ROWS)))
    for table in ("warehouse", "product", "stock_level", "job", "job_line", "ledger_entry"):
        conn.exec_driver_sql(f"ANALYZE TABLE {table}")


def job_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"
