"""Bulk batches: atomic means all or nothing, independent means line by line, both exact."""

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, insert, select

from shared.models import LedgerEntry, Product, StockLevel, Warehouse
from tests.e2e.conftest import assert_books_balance
from tests.support.client import unique, wait_for_jobs


@pytest.fixture
def catalog(client, db):
    """One warehouse and 2,000 products, inserted directly: the catalog API is not under test."""
    warehouse = unique("BULK")
    assert client.post("/v1/warehouses", json={"code": warehouse, "name": "Bulk"}).status_code == 201
    prefix = unique("P")
    skus = [f"{prefix}-{i:05d}" for i in range(2000)]
    db.execute(insert(Product), [{"sku": s, "name": s, "unit": "unit"} for s in skus])
    db.commit()
    return warehouse, skus


def _receipts(warehouse: str, skus: list[str], lines: int) -> list[dict]:
    return [{"type": "receive", "warehouse": warehouse, "sku": skus[i % len(skus)], "quantity": 1 + i % 7}
            for i in range(lines)]


def _submit_batch(client: httpx.Client, mode: str, commands: list[dict]) -> str:
    r = client.post("/v1/batches", json={"mode": mode, "commands": commands})
    assert r.status_code == 202, r.text[:500]
    assert r.json()["kind"] == "batch"
    return r.json()["job_id"]


def _ledger_count(db, job_id: str) -> int:
    db.rollback()
    return db.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.job_id == job_id))


def _levels(db, warehouse: str) -> dict[str, int]:
    db.rollback()
    rows = db.execute(select(Product.sku, StockLevel.on_hand)
                      .join(StockLevel, StockLevel.product_id == Product.id)
                      .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
                      .where(Warehouse.code == warehouse))
    return dict(rows.all())


def _all_lines(client: httpx.Client, job_id: str, status: str) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"status": status, "limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/jobs/{job_id}/lines", params=params).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def test_atomic_batch_with_one_bad_line_writes_nothing(client, db, catalog):
    warehouse, skus = catalog
    commands = _receipts(warehouse, skus, 10_000)
    commands[5_000] = {"type": "receive", "warehouse": warehouse, "sku": "NO-SUCH-SKU", "quantity": 1}
    before = _levels(db, warehouse)

    job_id = _submit_batch(client, "atomic", commands)
    job = wait_for_jobs(client, [job_id], timeout=120)[job_id]

    assert job["status"] == "failed"
    assert job["error"]["type"] == "/problems/unknown-sku"
    assert job["error"]["line"] == 5_000
    assert job["result"] == {"total": 10_000, "succeeded": 0, "failed": 1}
    assert [line["line"] for line in _all_lines(client, job_id, "failed")] == [5_000]
    assert _all_lines(client, job_id, "succeeded") == []
    assert _ledger_count(db, job_id) == 0
    assert _levels(db, warehouse) == before
    assert_books_balance(db)


def test_independent_batch_applies_every_good_line_and_reports_the_bad_one(client, db, catalog):
    warehouse, skus = catalog
    commands = _receipts(warehouse, skus, 10_000)
    commands[5_000] = {"type": "issue", "warehouse": warehouse, "sku": skus[0], "quantity": 10**9}

    job_id = _submit_batch(client, "independent", commands)
    job = wait_for_jobs(client, [job_id], timeout=120)[job_id]

    assert job["status"] == "partially_failed"
    assert job["result"] == {"total": 10_000, "succeeded": 9_999, "failed": 1}
    failed = _all_lines(client, job_id, "failed")
    assert [(f["line"], f["error"]["type"]) for f in failed] == [(5_000, "/problems/insufficient-stock")]
    succeeded = _all_lines(client, job_id, "succeeded")
    assert [s["line"] for s in succeeded] == [i for i in range(10_000) if i != 5_000]
    assert _ledger_count(db, job_id) == 9_999

    expected: dict[str, int] = {}
    for i, command in enumerate(commands):
        if i != 5_000:
            expected[command["sku"]] = expected.get(command["sku"], 0) + command["quantity"]
    assert _levels(db, warehouse) == expected
    assert_books_balance(db)


def test_batches_touching_the_same_skus_in_opposite_orders_run_together(client, db, catalog, api_url, auth):
    warehouse, skus = catalog
    skus = skus[:300]
    forward = [{"type": "receive", "warehouse": warehouse, "sku": s, "quantity": 2} for s in skus]
    backward = [{"type": "receive", "warehouse": warehouse, "sku": s, "quantity": 3} for s in skus[::-1]]

    def send(commands: list[dict]) -> str:
        with httpx.Client(base_url=api_url, timeout=60, headers=auth) as own:
            return _submit_batch(own, "atomic", commands)

    with ThreadPoolExecutor(max_workers=8) as pool:
        job_ids = list(pool.map(send, [forward, backward] * 4))

    results = wait_for_jobs(client, job_ids, timeout=120)
    assert {r["status"] for r in results.values()} == {"succeeded"}
    assert _levels(db, warehouse) == {s: 4 * 2 + 4 * 3 for s in skus}
    assert_books_balance(db)


def test_invalid_lines_are_all_reported_before_queuing(client, db):
    db.rollback()
    jobs_before = db.execute(select(func.count()).select_from(LedgerEntry)).scalar()
    commands = [{"type": "receive", "warehouse": "W", "sku": "S", "quantity": 1} for _ in range(10)]
    commands[2]["quantity"] = 0
    commands[5] = {"type": "teleport"}
    commands[9]["sku"] = "bad sku"
    r = client.post("/v1/batches", json={"mode": "atomic", "commands": commands})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    bad_lines = {e["loc"][2] for e in r.json()["errors"]}
    assert bad_lines == {2, 5, 9}
    db.rollback()
    assert db.execute(select(func.count()).select_from(LedgerEntry)).scalar() == jobs_before


def test_a_batch_over_the_line_limit_is_refused_with_413(client):
    commands = [{"type": "receive", "warehouse": "W", "sku": "S", "quantity": 1}] * 10_001
    r = client.post("/v1/batches", json={"mode": "independent", "commands": commands})
    assert r.status_code == 413
    assert r.json()["type"] == "/problems/payload-too-large"
