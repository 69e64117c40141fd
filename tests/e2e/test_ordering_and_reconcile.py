"""Per-warehouse order with several workers on every shard queue, and the reconcile check catching
damage."""

import subprocess
import sys
import uuid

import httpx
from sqlalchemy import select, update

from shared.models import LedgerEntry, StockLevel, Warehouse
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import ROOT, start_api, start_worker

SEQUENCE = [("receive", 10), ("issue", 10), ("receive", 5), ("issue", 5)]


def test_commands_for_one_warehouse_apply_in_accepted_order(auth, db, broker):
    # Three workers, each consuming every shard queue: any of them may get any wake-up, and the
    # slot locks alone keep each warehouse in order, on either broker.
    _, broker_settings, created_queues = broker
    prefix = f"ord{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "3", **broker_settings}
    api, url = start_api(env, workers=2)
    queues = [f"{prefix}.{i}" for i in range(3)]
    created_queues.extend(queues)
    workers = [start_worker(f"{prefix}-{i}", queues=queues, env=env) for i in range(3)]
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
            warehouses, sku = [unique("ORD") for _ in range(12)], unique("SKU")
            create_catalog(c, warehouses, [sku])
            job_ids: dict[str, list[str]] = {w: [] for w in warehouses}
            for _ in range(3):  # the same sequence three times, interleaved across warehouses
                for kind, quantity in SEQUENCE:
                    for w in warehouses:
                        job_ids[w].append(submit(c, {"type": kind, "warehouse": w, "sku": sku,
                                                     "quantity": quantity}))
            results = wait_for_jobs(c, [j for ids in job_ids.values() for j in ids], timeout=120)
    finally:
        for w in workers:
            w.stop()
        api.stop()

    assert {r["status"] for r in results.values()} == {"succeeded"}  # an issue never ran before its receive
    db.rollback()
    for w in warehouses:
        applied = db.scalars(select(LedgerEntry.job_id)
                             .join(StockLevel, StockLevel.id == LedgerEntry.stock_level_id)
                             .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
                             .where(Warehouse.code == w).order_by(LedgerEntry.id)).all()
        assert applied == job_ids[w], f"{w} applied out of accepted order"


def _reconcile() -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.reconcile"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_reconcile_passes_on_balanced_books_and_fails_on_damage(client, db):
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    job_id = submit(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 3})
    wait_for_jobs(client, [job_id])
    ok = _reconcile()
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "OK: the books balance" in ok.stdout

    db.rollback()
    level_id = db.scalar(select(LedgerEntry.stock_level_id).where(LedgerEntry.job_id == job_id))
    db.execute(update(StockLevel).where(StockLevel.id == level_id).values(on_hand=StockLevel.on_hand + 1))
    db.commit()
    try:
        damaged = _reconcile()
        assert damaged.returncode == 1
        assert f"stock level {level_id}: on_hand 4 but ledger sums to 3" in damaged.stdout
    finally:
        db.execute(update(StockLevel).where(StockLevel.id == level_id).values(on_hand=3))
        db.commit()
