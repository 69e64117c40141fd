"""The embedded profile's SQLite engine, in this process against a file of its own: the pragmas, the
write lock taken at BEGIN, busy errors the worker retries, and the apply path on the real schema."""

import threading
import time
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from shared.models import Job, Product, StockLevel, Warehouse, utcnow
from shared.sqlite_engine import create_sqlite_engine, is_busy
from shared.stock.apply import apply_jobs
from shared.stock.reconcile import find_mismatches
from shared.transaction import _is_lock_conflict


def test_connections_use_wal_a_busy_timeout_and_foreign_keys(engine):
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_read_then_write_transaction_keeps_its_turn_against_another_writer(engine):
    """With a deferred BEGIN the first transaction's write would fail with SQLITE_BUSY, because
    another process committed after its read; BEGIN IMMEDIATE makes the other writer wait instead."""
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO warehouse (code, name, active, created_at, updated_at) "
                             "VALUES ('W', 'w', 1, '2026-01-01', '2026-01-01')")
    other_done = threading.Event()

    def other_writer() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE warehouse SET name = name || '+other' WHERE code = 'W'")
        other_done.set()

    with engine.begin() as conn:
        name = conn.exec_driver_sql("SELECT name FROM warehouse WHERE code = 'W'").scalar()
        thread = threading.Thread(target=other_writer)
        thread.start()
        time.sleep(0.3)
        assert not other_done.is_set()  # waiting for our write lock, not racing past our read
        conn.exec_driver_sql(f"UPDATE warehouse SET name = '{name}+first' WHERE code = 'W'")
    thread.join(10)
    assert other_done.is_set()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT name FROM warehouse").scalar() == "w+first+other"


def test_a_writer_that_waited_past_the_busy_timeout_is_retried_by_the_worker(url, engine):
    impatient = create_sqlite_engine(url, busy_timeout_seconds=0.1)
    try:
        with engine.begin() as holder:
            holder.exec_driver_sql("SELECT 1")
            with pytest.raises(OperationalError) as raised, impatient.begin() as conn:
                conn.exec_driver_sql("SELECT 1")
    finally:
        impatient.dispose()
    assert is_busy(raised.value)
    assert _is_lock_conflict(raised.value)


def _job(session: Session, kind: str, payload: dict, mode: str | None = None) -> str:
    job_id = str(uuid.uuid4())
    session.add(Job(id=job_id, kind=kind, mode=mode, status="queued", payload=payload, slot=0,
                    attempts=1, submitted_at=utcnow()))
    return job_id


def test_the_apply_path_runs_on_the_migrated_schema(engine):
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory.begin() as session:
        session.add_all([Warehouse(code="SEL-1", name="Seoul", active=True),
                         Warehouse(code="BUS-2", name="Busan", active=True),
                         Product(sku="BOOK-001", name="Book"), Product(sku="PEN-1", name="Pen")])
    with factory.begin() as session:
        receive = _job(session, "command", {"type": "receive", "warehouse": "SEL-1", "sku": "BOOK-001",
                                            "quantity": 10})
        oversell = _job(session, "command", {"type": "issue", "warehouse": "SEL-1", "sku": "PEN-1",
                                             "quantity": 1})
        batch = _job(session, "batch", {"commands": [
            {"type": "transfer", "from_warehouse": "SEL-1", "to_warehouse": "BUS-2", "sku": "BOOK-001",
             "quantity": 4},
            {"type": "receive", "warehouse": "BUS-2", "sku": "PEN-1", "quantity": 2},
        ]}, mode="atomic")
    with factory.begin() as session:
        outcomes = {o.job_id: o for o in apply_jobs(session.connection(), [receive, oversell, batch])}
    assert outcomes[receive].result == {"on_hand_after": 10, "version_after": 1}
    assert outcomes[oversell].error["type"] == "/problems/insufficient-stock"
    assert outcomes[batch].result == {"total": 2, "succeeded": 2, "failed": 0}

    with factory.begin() as session:
        # Applied again (a redelivered message): nothing changes.
        assert all(o.already_applied for o in apply_jobs(session.connection(), [receive, batch]))
    with factory() as session:
        levels = {(w, p): on_hand for w, p, on_hand in session.execute(
            select(Warehouse.code, Product.sku, StockLevel.on_hand)
            .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
            .join(Product, Product.id == StockLevel.product_id))}
        # The failed issue left no empty level behind.
        assert levels == {("SEL-1", "BOOK-001"): 6, ("BUS-2", "BOOK-001"): 4, ("BUS-2", "PEN-1"): 2}
        assert find_mismatches(session) == []
