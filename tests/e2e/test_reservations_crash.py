"""A worker killed with SIGKILL while it applies a batch of reserves: after a restart every
reservation is held once, with one ledger entry, and the books balance. Then the restarted worker
expires them, through the same path."""

import time
import uuid

import httpx
from sqlalchemy import func, insert, select, update

from shared.models import Job, LedgerEntry, Product, Reservation
from tests.e2e.conftest import assert_books_balance
from tests.support.client import unique, wait_for_jobs
from tests.support.processes import start_api, start_worker

LINES = 6000


def _wait_running(db, job_id: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        db.rollback()
        if db.scalar(select(Job.status).where(Job.id == job_id)) == "running":
            return
        time.sleep(0.01)


def test_sigkill_mid_batch_of_reserves_holds_each_once_and_they_still_expire(auth, db):
    prefix = f"rcrash{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "1"}
    api, url = start_api(env, workers=1)
    worker = start_worker(f"{prefix}-first", queues=[f"{prefix}.0"], env=env)
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
            warehouse = unique("RCRASH")
            assert c.post("/v1/warehouses", json={"code": warehouse, "name": "x"}).status_code == 201
            skus = [f"{warehouse}-{i}" for i in range(LINES // 2)]
            db.execute(insert(Product), [{"sku": s, "name": s, "unit": "unit"} for s in skus])
            db.commit()
            stock = c.post("/v1/batches", headers={"Prefer": "wait=60"}, json={"mode": "atomic", "commands": [
                {"type": "receive", "warehouse": warehouse, "sku": s, "quantity": 2} for s in skus]})
            assert stock.json()["status"] == "succeeded", stock.text
            ids = [f"{warehouse}-r{i}" for i in range(LINES)]
            lines = [{"type": "reserve", "warehouse": warehouse, "sku": skus[i % len(skus)], "quantity": 1,
                      "reservation": ids[i], "expires_in": 30} for i in range(LINES)]
            job_id = c.post("/v1/batches", json={"mode": "independent", "commands": lines}).json()["job_id"]
            _wait_running(db, job_id)
            worker.kill()
            db.rollback()
            assert db.scalar(select(Job.status).where(Job.id == job_id)) == "running", \
                "the worker finished before it could be killed; the test proves nothing"

            worker = start_worker(f"{prefix}-second", queues=[f"{prefix}.0"], env=env)
            job = wait_for_jobs(c, [job_id], timeout=120)[job_id]
            assert job["status"] == "succeeded" and job["result"]["succeeded"] == LINES
            db.rollback()
            assert db.scalar(select(func.count()).select_from(LedgerEntry)
                             .where(LedgerEntry.job_id == job_id)) == LINES
            assert db.scalar(select(func.count()).select_from(Reservation)
                             .where(Reservation.client_id.in_(ids))) == LINES
            assert db.scalar(select(Job.attempts).where(Job.id == job_id)) == 2
            assert_books_balance(db)
            level = c.get(f"/v1/stock/{warehouse}/{skus[0]}").json()
            assert (level["on_hand"], level["reserved"], level["available"]) == (2, 2, 0)

            # Their time runs out now: the restarted worker's expiry scan releases every one.
            db.execute(update(Reservation).where(Reservation.client_id.in_(ids))
                       .values(expires_at=func.utc_timestamp(6)))
            db.commit()
            deadline, active = time.monotonic() + 90, LINES
            while active:
                assert time.monotonic() < deadline, f"{active} reservations did not expire"
                time.sleep(0.5)
                db.rollback()
                active = db.scalar(select(func.count()).select_from(Reservation).where(
                    Reservation.client_id.in_(ids), Reservation.status == "active"))
            assert db.scalar(select(func.count()).select_from(Reservation).where(
                Reservation.client_id.in_(ids), Reservation.status == "expired")) == LINES
            assert db.scalar(select(func.count()).select_from(LedgerEntry)
                             .where(LedgerEntry.type == "expire",
                                    LedgerEntry.stock_level_id.in_(
                                        select(Reservation.stock_level_id)
                                        .where(Reservation.client_id.in_(ids))))) == LINES
            assert_books_balance(db)
    finally:
        worker.stop()
        api.stop()
