"""Transfers both ways at once never deadlock the system; a wake-up delivered again applies nothing
twice."""

import os
import random
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import func, select

from shared.models import Job, LedgerEntry
from tests.e2e.conftest import assert_books_balance
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import ROOT, start_api, start_worker
from tests.support.promql import scrape


def _on_hand(client: httpx.Client, warehouse: str, sku: str) -> int:
    return client.get(f"/v1/stock/{warehouse}/{sku}").json()["on_hand"]


def test_transfers_in_both_directions_conserve_the_total(client, api_url, db, auth):
    a, b, skus = unique("A"), unique("B"), [unique("SKU") for _ in range(3)]
    create_catalog(client, [a, b], skus)
    opening = [submit(client, {"type": "receive", "warehouse": w, "sku": s, "quantity": 100})
               for w in (a, b) for s in skus]
    assert all(r["status"] == "succeeded" for r in wait_for_jobs(client, opening).values())

    def send(seed: int) -> list[str]:
        rng = random.Random(seed)
        with httpx.Client(base_url=api_url, timeout=30, headers=auth) as own:
            return [submit(own, {"type": "transfer", "from_warehouse": src, "to_warehouse": dst,
                                 "sku": rng.choice(skus), "quantity": rng.randint(1, 30)})
                    for src, dst in (rng.choice([(a, b), (b, a)]) for _ in range(25))]

    with ThreadPoolExecutor(max_workers=8) as pool:
        job_ids = [j for chunk in pool.map(send, range(8)) for j in chunk]

    results = wait_for_jobs(client, job_ids, timeout=120)
    statuses = {r["status"] for r in results.values()}
    assert statuses <= {"succeeded", "failed"}
    assert any(r["status"] == "succeeded" for r in results.values())
    failures = {r["error"]["type"] for r in results.values() if r["status"] == "failed"}
    assert failures <= {"/problems/insufficient-stock"}  # never a deadlock or lock timeout

    for sku in skus:
        assert _on_hand(client, a, sku) + _on_hand(client, b, sku) == 200
    assert_books_balance(db)


def _drains(workers: list, result: str) -> float:
    return sum(s.value for w in workers for s in scrape(w.metrics_url)
               if s.name == "stock_worker_drains_total" and s.labels == {"result": result})


def _send_again(env: dict[str, str], slot: int, job_id: str) -> None:
    """The same wake-up twice, as a broker redelivery would send it, and a message in the form an
    API from before ordering slots sent (the job's id); from a process on the test's broker."""
    script = ("import sys; from shared.celery_app import LEGACY_APPLY_TASK, celery_app, queue_name, "
              "send_wakeups; slot, job = int(sys.argv[1]), sys.argv[2]; "
              "send_wakeups({0: [slot]}); send_wakeups({1: [slot]}); "
              "celery_app.send_task(LEGACY_APPLY_TASK, args=[[job]], queue=queue_name(0))")
    done = subprocess.run([sys.executable, "-c", script, str(slot), job_id], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_wakeup_delivered_again_changes_stock_once(auth, db, broker):
    _, broker_settings, created_queues = broker
    prefix = f"again{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "2", **broker_settings}
    created_queues.extend([f"{prefix}.0", f"{prefix}.1"])
    api, url = start_api(env, workers=1)
    worker = start_worker(f"{prefix}-w", created_queues, env=env)
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as client:
            warehouse, sku = unique("W"), unique("SKU")
            create_catalog(client, [warehouse], [sku])
            job_id = submit(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 7})
            first = wait_for_jobs(client, [job_id])[job_id]
            idle_drains = _drains([worker], "nothing_waiting")

            _send_again(env, db.scalar(select(Job.slot).where(Job.id == job_id)), job_id)
            deadline = time.monotonic() + 30
            while _drains([worker], "nothing_waiting") < idle_drains + 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _drains([worker], "nothing_waiting") >= idle_drains + 3
            assert client.get(f"/v1/jobs/{job_id}").json()["result"] == first["result"]
            assert _on_hand(client, warehouse, sku) == 7
    finally:
        worker.stop()
        api.stop()

    db.rollback()
    entries = db.scalar(select(func.count()).select_from(LedgerEntry)
                        .where(LedgerEntry.job_id == job_id))
    assert entries == 1
    assert_books_balance(db)
