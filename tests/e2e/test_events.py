"""The events feed: every finished job and every stock change, written in the same transaction,
read in commit order after a cursor; each key sees what it may; stock.low once per crossing; and,
with many writers at once, a reader that follows the feed sees every event exactly once.

Each test has a database of its own: the feed is the whole database's."""

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import delete, func, select

from shared.models import Event, LedgerEntry
from tests.e2e.conftest import OwnDatabase, assert_books_balance
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import start_api, start_worker


@pytest.fixture
def stack(own_database: OwnDatabase) -> Iterator[tuple[str, OwnDatabase]]:
    prefix = f"events{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "2", "DATABASE_URL": own_database.address}
    api, url = start_api(env, workers=1)
    queues = [f"{prefix}.0", f"{prefix}.1"]
    workers = [start_worker(f"{prefix}-{n}", queues, env=env) for n in range(2)]
    yield url, own_database
    for worker in workers:
        worker.stop()
    api.stop()


def follow(client: httpx.Client, cursor: str | None = None, **params: str) -> tuple[list[dict], str]:
    """Every event after the cursor that is there now; returns them and the cursor to keep. A page
    may be empty and still move the cursor on (the feed scans a window of positions at a time):
    the end is where the cursor stops moving."""
    seen: list[dict] = []
    while True:
        page = client.get("/v1/events", params={**params, **({"after": cursor} if cursor else {}),
                                                "limit": "100"}).json()
        seen += page["items"]
        if page["next_cursor"] == cursor:
            return seen, page["next_cursor"]
        cursor = page["next_cursor"]


def test_each_job_and_stock_change_is_an_event_in_commit_order(stack):
    url, database = stack
    auth = database.auth()
    with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
        warehouse, other, sku = unique("EV"), unique("EV"), unique("EVS")
        create_catalog(c, [warehouse, other], [sku])
        jobs = [submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 5,
                           "reference": "PO-1"}),
                submit(c, {"type": "transfer", "from_warehouse": warehouse, "to_warehouse": other,
                           "sku": sku, "quantity": 2}),
                submit(c, {"type": "issue", "warehouse": warehouse, "sku": sku, "quantity": 50})]
        wait_for_jobs(c, jobs)
        events, cursor = follow(c)
        again, same = follow(c, cursor)
    assert again == [] and same == cursor, "a kept cursor sees nothing twice"
    changed = [e["data"] for e in events if e["type"] == "stock.changed"]
    assert [(d["warehouse"], d["type"], d["delta"], d["on_hand"], d["version"]) for d in changed] == [
        (warehouse, "receive", 5, 5, 1), (warehouse, "transfer_out", -2, 3, 2),
        (other, "transfer_in", 2, 2, 1)]
    assert changed[0]["job_id"] == jobs[0] and changed[0]["reference"] == "PO-1"
    assert changed[0]["available"] == 5 and changed[0]["reserved"] == 0
    completed = {e["data"]["job_id"]: e["data"] for e in events if e["type"] == "job.completed"}
    assert set(completed) == set(jobs)
    assert completed[jobs[2]]["status"] == "failed"
    assert completed[jobs[2]]["error"]["type"] == "/problems/insufficient-stock"
    positions = [int(e["id"].removeprefix("evt_")) for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


def test_another_key_sees_stock_events_without_the_job_and_not_the_jobs_events(stack):
    url, database = stack
    mine, theirs = database.auth(), database.auth()
    with httpx.Client(base_url=url, headers=mine, timeout=30) as c, \
            httpx.Client(base_url=url, headers=theirs, timeout=30) as other:
        warehouse, sku = unique("EV"), unique("EVS")
        create_catalog(c, [warehouse], [sku])
        job = submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1,
                         "reference": "PO-secret"})
        wait_for_jobs(c, [job])
        seen_by_them, _ = follow(other)
        only_changes, _ = follow(c, type="stock.changed")
    assert {e["type"] for e in seen_by_them} == {"stock.changed"}
    assert seen_by_them[0]["data"]["job_id"] is None and seen_by_them[0]["data"]["reference"] is None
    assert seen_by_them[0]["data"]["on_hand"] == 1
    assert [e["type"] for e in only_changes] == ["stock.changed"]
    assert only_changes[0]["data"]["job_id"] == job


def test_stock_low_is_announced_once_per_crossing_of_the_reorder_point(stack):
    url, database = stack
    admin = database.auth(frozenset({"admin"}))
    with httpx.Client(base_url=url, headers=admin, timeout=30) as c:
        warehouse, sku = unique("LOW"), unique("LOWS")
        create_catalog(c, [warehouse], [sku])
        r = c.put(f"/v1/stock/{warehouse}/{sku}/reorder-point", json={"reorder_point": 5})
        assert r.status_code == 200, r.text
        assert r.json()["reorder_point"] == 5 and r.json()["on_hand"] == 0
        steps = [("receive", 10), ("issue", 4), ("issue", 2), ("issue", 1), ("receive", 5), ("issue", 4)]
        for kind, quantity in steps:  # available: 10, 6, 4 (low), 3, 8, 4 (low)
            wait_for_jobs(c, [submit(c, {"type": kind, "warehouse": warehouse, "sku": sku,
                                         "quantity": quantity})])
        low, _ = follow(c, type="stock.low")
        level = c.get(f"/v1/stock/{warehouse}/{sku}").json()
    assert [(e["data"]["available"], e["data"]["reorder_point"]) for e in low] == [(4, 5), (4, 5)]
    assert level["reorder_point"] == 5 and level["available"] == 4


def test_a_cursor_older_than_the_events_kept_is_refused_not_silently_skipped(stack):
    url, database = stack
    auth = database.auth()
    with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
        warehouse, sku = unique("OLD"), unique("OLDS")
        create_catalog(c, [warehouse], [sku])
        wait_for_jobs(c, [submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1})
                          for _ in range(3)])
        first, _ = follow(c, limit="1")
        cursor_before_all = c.get("/v1/events", params={"limit": "1"}).json()["next_cursor"]
        with database.session() as session:  # retention deleted the oldest events
            session.execute(delete(Event).where(Event.position <= 2))
            session.commit()
        expired = c.get("/v1/events", params={"after": cursor_before_all})
    assert first
    assert expired.status_code == 410
    assert expired.json()["type"] == "/problems/cursor-expired"


def test_many_writers_and_a_reader_following_the_feed_see_every_event_exactly_once(stack):
    """The outbox trap: ids handed out at insert, in another order than commits. Positions here
    come in commit order, so a reader that keeps its cursor while writers commit concurrently
    misses nothing and sees nothing twice."""
    url, database = stack
    auth = database.auth()
    warehouses, skus = [unique("MW") for _ in range(8)], [unique("MWS") for _ in range(5)]
    with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
        create_catalog(c, warehouses, skus)
    stop = threading.Event()
    seen: list[dict] = []

    def read_along() -> None:
        cursor = None
        with httpx.Client(base_url=url, headers=auth, timeout=30) as reader:
            while True:
                stopping = stop.is_set()  # one more full read after the writers stopped
                events, cursor = follow(reader, cursor)
                seen.extend(events)
                if stopping:
                    return
                time.sleep(0.02)

    def write(n: int) -> list[str]:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as writer:
            return [submit(writer, {"type": "receive", "warehouse": warehouses[(n + i) % 8],
                                    "sku": skus[i % 5], "quantity": 1}) for i in range(40)]

    reader = threading.Thread(target=read_along)
    reader.start()
    results: list[list[str]] = [[] for _ in range(8)]
    writers = [threading.Thread(target=lambda n=n: results.__setitem__(n, write(n))) for n in range(8)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
        wait_for_jobs(c, [j for jobs in results for j in jobs], timeout=60)
    stop.set()
    reader.join(60)

    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)), "an event was seen twice"
    with database.session() as session:
        in_database = session.scalar(select(func.count()).select_from(Event))
        ledger = session.scalar(select(func.count()).select_from(LedgerEntry))
    assert len(ids) == in_database, "an event committed was never seen"
    assert sum(1 for e in seen if e["type"] == "stock.changed") == ledger == 8 * 40
    assert sum(1 for e in seen if e["type"] == "job.completed") == 8 * 40
    with database.session() as session:
        assert_books_balance(session)
