"""A worker killed with SIGKILL mid-transaction, with more work queued behind: every job completes,
in order, each applied once."""

import os
import signal
import subprocess
import time
import uuid

import httpx
from sqlalchemy import func, insert, select

from shared.models import Job, LedgerEntry, Product
from tests.e2e.conftest import assert_books_balance
from tests.support.client import submit, unique, wait_for_jobs
from tests.support.processes import start_api, start_worker


def test_sigkill_while_applying_a_batch_loses_nothing_and_applies_once(auth, db):
    prefix = f"crash{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "1"}
    api, url = start_api(env, workers=1)
    worker = start_worker(f"{prefix}-first", queues=[f"{prefix}.0"], env=env)
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
            warehouse = unique("CRASH")
            assert c.post("/v1/warehouses", json={"code": warehouse, "name": "x"}).status_code == 201
            skus = [f"{warehouse}-{i}" for i in range(5000)]
            db.execute(insert(Product), [{"sku": s, "name": s, "unit": "unit"} for s in skus])
            db.commit()
            lines = [{"type": "receive", "warehouse": warehouse, "sku": skus[i % 5000], "quantity": 1}
                     for i in range(10_000)]
            job_id = c.post("/v1/batches", json={"mode": "atomic", "commands": lines}).json()["job_id"]
            behind = [submit(c, {"type": kind, "warehouse": warehouse, "sku": skus[0], "quantity": 2})
                      for kind in ("issue", "receive") * 10]

            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # wait until the worker has taken the job
                db.rollback()
                if db.scalar(select(Job.status).where(Job.id == job_id)) == "running":
                    break
                time.sleep(0.01)
            worker.kill()
            db.rollback()
            assert db.scalar(select(Job.status).where(Job.id == job_id)) == "running", \
                "the worker finished before it could be killed; the test proves nothing"

            worker = start_worker(f"{prefix}-second", queues=[f"{prefix}.0"], env=env)
            results = wait_for_jobs(c, [job_id, *behind], timeout=120)
            job = results[job_id]
    finally:
        worker.stop()
        api.stop()

    assert job["status"] == "succeeded"
    assert job["result"] == {"total": 10_000, "succeeded": 10_000, "failed": 0}
    db.rollback()
    entries = select(func.count()).select_from(LedgerEntry).where(LedgerEntry.job_id == job_id)
    assert db.scalar(entries) == 10_000
    assert db.scalar(select(Job.attempts).where(Job.id == job_id)) == 2
    assert {results[j]["status"] for j in behind} == {"succeeded"}
    order = db.scalars(select(LedgerEntry.job_id).where(LedgerEntry.job_id.in_(behind))
                       .order_by(LedgerEntry.id)).all()
    assert order == behind
    assert_books_balance(db)


def test_a_prefork_pool_process_killed_outright_is_replaced_and_the_worker_goes_on(auth, db):
    """bin/run and the images use the solo pool; a deployment that runs the prefork pool instead
    still works. Its replacement child is forked after the parent's start-up recovery used the
    database: it must open connections of its own (worker.app's worker_process_init) and apply the
    next commands."""
    prefix = f"child{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "1"}
    api, url = start_api(env, workers=1)
    worker = start_worker(f"{prefix}-w", queues=[f"{prefix}.0"], env=env, pool="prefork")
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
            warehouse, sku = unique("CHILD"), unique("SKU")
            assert c.post("/v1/warehouses", json={"code": warehouse, "name": "x"}).status_code == 201
            assert c.post("/v1/products", json={"sku": sku, "name": "x", "unit": "ea"}).status_code == 201
            first = submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 5})
            assert wait_for_jobs(c, [first])[first]["status"] == "succeeded"

            children = subprocess.run(["pgrep", "-P", str(worker.popen.pid)], capture_output=True,
                                      text=True).stdout.split()
            assert len(children) == 1, children
            os.kill(int(children[0]), signal.SIGKILL)

            later = [submit(c, {"type": kind, "warehouse": warehouse, "sku": sku, "quantity": 1})
                     for kind in ("issue", "receive") * 5]
            results = wait_for_jobs(c, later, timeout=60)
            replacement = subprocess.run(["pgrep", "-P", str(worker.popen.pid)], capture_output=True,
                                         text=True).stdout.split()
    finally:
        worker.stop()
        api.stop()
    assert {r["status"] for r in results.values()} == {"succeeded"}
    assert replacement and replacement != children
    assert_books_balance(db)
