"""Reservations through the real API, queue and workers: nothing promised twice under concurrency,
expiry through the apply path, a commit that races the expiry has one winner, batches of reserves
all or nothing, and the books (levels, ledger, reservations) balanced afterwards."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select

from shared.models import LedgerEntry, Product, StockLevel, Warehouse
from tests.e2e.conftest import assert_books_balance, make_key
from tests.support.client import create_catalog, submit, unique, wait_for_jobs

WAIT = {"Prefer": "wait=30"}


def _stocked(client: httpx.Client, quantity: int) -> tuple[str, str]:
    warehouse, sku = unique("RSV"), unique("RSKU")
    create_catalog(client, [warehouse], [sku])
    done = client.post("/v1/commands", headers=WAIT, json={"type": "receive", "warehouse": warehouse,
                                                            "sku": sku, "quantity": quantity})
    assert done.status_code == 200 and done.json()["status"] == "succeeded", done.text
    return warehouse, sku


def _outcome(client: httpx.Client, command: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/v1/commands", headers=WAIT, json=command)
    assert answer.status_code == 200, answer.text
    return answer.json()


def _reserve(warehouse: str, sku: str, quantity: int, reservation: str, expires_in: int = 900) -> dict:
    return {"type": "reserve", "warehouse": warehouse, "sku": sku, "quantity": quantity,
            "reservation": reservation, "expires_in": expires_in}


def _ledger_types(db, warehouse: str, sku: str) -> list[tuple[str, int, int, int]]:
    db.rollback()
    return [tuple(r) for r in db.execute(
        select(LedgerEntry.type, LedgerEntry.delta, LedgerEntry.reserved_delta, LedgerEntry.version)
        .join(StockLevel, StockLevel.id == LedgerEntry.stock_level_id)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .join(Product, Product.id == StockLevel.product_id)
        .where(Warehouse.code == warehouse, Product.sku == sku).order_by(LedgerEntry.version))]


def test_50_concurrent_reservations_for_10_units_hold_exactly_10(client, api_url, auth, db):
    warehouse, sku = _stocked(client, 10)

    def reserve(n: int) -> str:
        with httpx.Client(base_url=api_url, timeout=30, headers=auth) as own:
            return submit(own, _reserve(warehouse, sku, 1, f"cart-{warehouse}-{n}"))

    with ThreadPoolExecutor(max_workers=25) as pool:
        job_ids = list(pool.map(reserve, range(50)))
    results = wait_for_jobs(client, job_ids, timeout=120)
    statuses = [r["status"] for r in results.values()]
    assert statuses.count("succeeded") == 10 and statuses.count("failed") == 40
    assert {r["error"]["type"] for r in results.values() if r["status"] == "failed"} == \
        {"/problems/insufficient-stock"}
    level = client.get(f"/v1/stock/{warehouse}/{sku}").json()
    assert (level["on_hand"], level["reserved"], level["available"], level["version"]) == (10, 10, 0, 11)
    refused = _outcome(client, {"type": "issue", "warehouse": warehouse, "sku": sku, "quantity": 1})
    assert refused["status"] == "failed" and refused["error"]["available"] == 0
    assert [t for t, *_ in _ledger_types(db, warehouse, sku)] == ["receive"] + ["reserve"] * 10
    assert_books_balance(db)


def test_reserve_commit_release_and_the_reservation_read(client, api_url, db):
    warehouse, sku = _stocked(client, 10)
    cart = f"cart-{warehouse}"
    held = _outcome(client, _reserve(warehouse, sku, 4, cart))
    assert held["status"] == "succeeded"
    assert held["result"]["reservation"] == {"reservation": cart, "status": "active", "held": 4}
    again = _outcome(client, _reserve(warehouse, sku, 4, cart))  # a retried reserve: the same one
    assert again["status"] == "succeeded" and again["result"]["reserved_after"] == 4

    partial = _outcome(client, {"type": "commit", "reservation": cart, "quantity": 1})
    assert partial["status"] == "succeeded", partial
    shown = client.get(f"/v1/reservations/{cart}").json()
    assert (shown["quantity"], shown["committed"], shown["status"]) == (4, 1, "active")
    assert shown["warehouse"] == warehouse and shown["sku"] == sku
    released = _outcome(client, {"type": "release", "reservation": cart})
    assert released["status"] == "succeeded"
    assert client.get(f"/v1/reservations/{cart}").json()["status"] == "released"
    level = client.get(f"/v1/stock/{warehouse}/{sku}").json()
    assert (level["on_hand"], level["reserved"], level["available"]) == (9, 0, 9)
    late = _outcome(client, {"type": "commit", "reservation": cart})
    assert late["error"]["type"] == "/problems/reservation-ended"
    assert _ledger_types(db, warehouse, sku) == [("receive", 10, 0, 1), ("reserve", 0, 4, 2),
                                                  ("commit", -1, -1, 3), ("release", 0, -3, 4)]
    # Reservation ids are per key: another key neither sees nor touches this one.
    other = {"Authorization": f"Bearer {make_key({'read', 'write'})}"}
    assert client.get(f"/v1/reservations/{cart}", headers=other).status_code == 404
    unknown = _outcome(httpx.Client(base_url=api_url, headers=other, timeout=30),
                       {"type": "release", "reservation": cart})
    assert unknown["error"]["type"] == "/problems/unknown-reservation"
    assert_books_balance(db)


def test_a_commit_sent_right_after_its_reserve_follows_it(client, db):
    """A commit names no warehouse: it is ordered where its reserve was, so it never overtakes it."""
    warehouse, sku = _stocked(client, 100)
    carts = [f"fast-{warehouse}-{n}" for n in range(20)]
    jobs = []
    for cart in carts:
        jobs.append(submit(client, _reserve(warehouse, sku, 2, cart)))
        jobs.append(submit(client, {"type": "commit", "reservation": cart}))
    results = wait_for_jobs(client, jobs, timeout=60)
    assert [results[j]["status"] for j in jobs] == ["succeeded"] * 40
    level = client.get(f"/v1/stock/{warehouse}/{sku}").json()
    assert (level["on_hand"], level["reserved"]) == (60, 0)
    assert_books_balance(db)


def test_an_expired_reservation_is_released_within_two_seconds_and_a_late_commit_fails(client, db):
    warehouse, sku = _stocked(client, 5)
    cart = f"exp-{warehouse}"
    held = _outcome(client, _reserve(warehouse, sku, 3, cart, expires_in=1))
    assert held["status"] == "succeeded"
    expires_at = datetime.fromisoformat(client.get(f"/v1/reservations/{cart}").json()["expires_at"])
    while client.get(f"/v1/stock/{warehouse}/{sku}").json()["reserved"] != 0:
        late = (datetime.now(expires_at.tzinfo) - expires_at).total_seconds()
        assert late < 3, f"still held {late:.1f} s after it expired"
        time.sleep(0.05)
    assert client.get(f"/v1/reservations/{cart}").json()["status"] == "expired"
    failed = _outcome(client, {"type": "commit", "reservation": cart})
    assert failed["status"] == "failed" and failed["error"]["type"] == "/problems/reservation-expired"
    assert [t for t, *_ in _ledger_types(db, warehouse, sku)] == ["receive", "reserve", "expire"]
    assert (client.get(f"/v1/stock/{warehouse}/{sku}").json()["available"]) == 5
    announced = [e["data"] for e in _all_events(client, "reservation.expired")]
    assert [e for e in announced if e["reservation"] == cart] == [
        {"reservation": cart, "warehouse": warehouse, "sku": sku, "quantity": 3, "committed": 0,
         "status": "expired", "expires_at": client.get(f"/v1/reservations/{cart}").json()["expires_at"]}]
    assert_books_balance(db)


def _all_events(client: httpx.Client, kind: str) -> list[dict]:
    """Every event of this type in the feed now. A page may be empty and still move the cursor on
    (the feed scans a window of positions at a time): the end is where the cursor stops moving."""
    found: list[dict] = []
    cursor = None
    while True:
        page = client.get("/v1/events", params={"type": kind, "limit": "100",
                                                **({"after": cursor} if cursor else {})}).json()
        found += page["items"]
        if page["next_cursor"] == cursor:
            return found
        cursor = page["next_cursor"]


def test_a_commit_racing_the_expiry_has_exactly_one_winner(client, db):
    warehouse, sku = _stocked(client, 50)
    carts = [f"race-{warehouse}-{n}" for n in range(10)]
    for cart in carts:
        assert _outcome(client, _reserve(warehouse, sku, 1, cart, expires_in=1))["status"] == "succeeded"
    time.sleep(0.8)
    commits = {cart: submit(client, {"type": "commit", "reservation": cart}) for cart in carts}
    results = wait_for_jobs(client, list(commits.values()), timeout=30)
    time.sleep(2.5)  # every expiry due has been applied
    for cart, job_id in commits.items():
        status = client.get(f"/v1/reservations/{cart}").json()["status"]
        if results[job_id]["status"] == "succeeded":
            assert status == "committed"
        else:
            assert results[job_id]["error"]["type"] == "/problems/reservation-expired"
            assert status == "expired"
    won = sum(r["status"] == "succeeded" for r in results.values())
    level = client.get(f"/v1/stock/{warehouse}/{sku}").json()
    assert (level["on_hand"], level["reserved"]) == (50 - won, 0)
    assert_books_balance(db)


def test_an_atomic_batch_of_reserves_holds_all_or_nothing(client, db):
    warehouse, sku = _stocked(client, 5)
    lines = [_reserve(warehouse, sku, 2, f"b-{warehouse}-{n}") for n in range(3)]
    job = client.post("/v1/batches", headers=WAIT, json={"mode": "atomic", "commands": lines}).json()
    assert job["status"] == "failed" and job["error"]["line"] == 2
    assert client.get(f"/v1/stock/{warehouse}/{sku}").json()["reserved"] == 0
    assert client.get(f"/v1/reservations/b-{warehouse}-0").status_code == 404
    job = client.post("/v1/batches", headers=WAIT, json={"mode": "atomic", "commands": lines[:2]}).json()
    assert job["status"] == "succeeded"
    level = client.get(f"/v1/stock/{warehouse}/{sku}").json()
    assert (level["reserved"], level["available"]) == (4, 1)
    assert_books_balance(db)


def test_a_count_below_what_is_held_releases_the_newest_reservations_and_says_which(client, db):
    warehouse, sku = _stocked(client, 10)
    carts = [f"cnt-{warehouse}-{n}" for n in range(3)]
    for cart in carts:
        assert _outcome(client, _reserve(warehouse, sku, 3, cart))["status"] == "succeeded"
    counted = _outcome(client, {"type": "count", "warehouse": warehouse, "sku": sku, "on_hand": 4})
    assert counted["result"]["released_reservations"] == carts[:0:-1]  # newest first
    assert [client.get(f"/v1/reservations/{c}").json()["status"] for c in carts] == \
        ["active", "released", "released"]
    level = client.get(f"/v1/stock/{warehouse}/{sku}").json()
    assert (level["on_hand"], level["reserved"], level["available"]) == (4, 3, 1)

    # In a batch, the count's line is one line of the job's lines, however many entries it made.
    assert _outcome(client, _reserve(warehouse, sku, 1, f"{carts[0]}-b"))["status"] == "succeeded"
    job = client.post("/v1/batches", headers=WAIT, json={"mode": "independent", "commands": [
        {"type": "count", "warehouse": warehouse, "sku": sku, "on_hand": 3},
        {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1}]}).json()
    first = client.get(f"/v1/jobs/{job['job_id']}/lines", params={"limit": 1}).json()
    assert [(i["line"], i["result"]["on_hand_after"], i["result"]["reserved_after"])
            for i in first["items"]] == [(0, 3, 3)]
    second = client.get(f"/v1/jobs/{job['job_id']}/lines",
                        params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [i["line"] for i in second["items"]] == [1]
    assert_books_balance(db)
