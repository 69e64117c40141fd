"""Many clients issuing against one level at once: no oversell, whatever the concurrency."""

from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import select

from shared.models import LedgerEntry, Product, StockLevel, Warehouse
from tests.e2e.conftest import assert_books_balance
from tests.support.client import create_catalog, submit, unique, wait_for_jobs


def test_200_concurrent_issues_against_50_units_sell_exactly_50(client, api_url, db, auth):
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    receive = submit(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 50})
    assert wait_for_jobs(client, [receive])[receive]["status"] == "succeeded"

    issue = {"type": "issue", "warehouse": warehouse, "sku": sku, "quantity": 1}

    def send_many(n: int) -> list[str]:
        with httpx.Client(base_url=api_url, timeout=30, headers=auth) as own:  # a client of its own
            return [submit(own, issue) for _ in range(n)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        job_ids = [j for batch in pool.map(send_many, [10] * 20) for j in batch]
    assert len(set(job_ids)) == 200

    results = wait_for_jobs(client, job_ids, timeout=120)
    statuses = [r["status"] for r in results.values()]
    assert statuses.count("succeeded") == 50
    assert statuses.count("failed") == 150
    failures = [r["error"] for r in results.values() if r["status"] == "failed"]
    assert {f["type"] for f in failures} == {"/problems/insufficient-stock"}
    assert all(f["requested"] == 1 and f["on_hand"] == 0 for f in failures)

    level = client.get(f"/v1/stock/{warehouse}/{sku}").json()
    assert level["on_hand"] == 0
    assert level["version"] == 51

    level_id = db.scalar(select(StockLevel.id).join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
                         .join(Product, Product.id == StockLevel.product_id)
                         .where(Warehouse.code == warehouse, Product.sku == sku))
    entries = db.execute(select(LedgerEntry.delta, LedgerEntry.version, LedgerEntry.on_hand_after)
                         .where(LedgerEntry.stock_level_id == level_id)
                         .order_by(LedgerEntry.id)).all()
    assert sum(e.delta for e in entries) == 0
    assert [e.version for e in entries] == list(range(1, 52))
    assert [e.on_hand_after for e in entries] == list(range(50, -1, -1))
    assert_books_balance(db)
