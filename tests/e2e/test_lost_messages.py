"""Jobs whose message the broker lost are finished by a running worker's sweep (worker/sweep.py),
in order and once, without a restart."""

import time
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import insert, select

from shared.models import ApiKey, Job, utcnow
from tests.e2e.conftest import assert_books_balance
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import start_api, start_worker
from tests.support.promql import scrape


def test_a_running_worker_finishes_jobs_whose_messages_were_lost_in_order(auth, db):
    prefix = f"lost{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "1", "SWEEP_INTERVAL_SECONDS": "1"}
    api, url = start_api(env, workers=1)
    worker = start_worker(f"{prefix}-w", queues=[f"{prefix}.0"], env=env)
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
            warehouse, sku = unique("LOST"), unique("LOSTS")
            create_catalog(c, [warehouse], [sku])
            # The worker is up and has nothing to do: it started before the jobs below existed.
            first = submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1})
            assert wait_for_jobs(c, [first])[first]["status"] == "succeeded"

            # Committed jobs whose messages never reached the queue: what the API leaves behind when
            # Redis loses its last appends after the commit.
            key_id = db.scalar(select(ApiKey.id).where(
                ApiKey.prefix == auth["Authorization"].split("_", 2)[1]))
            accepted = utcnow() - timedelta(seconds=5)
            lost = [(f"{prefix}-{n}", kind, quantity) for n, (kind, quantity) in
                    enumerate([("receive", 5), ("issue", 6), ("receive", 2)])]
            db.execute(insert(Job), [
                {"id": job_id, "kind": "command", "status": "queued", "shard": 0, "attempts": 0,
                 "api_key_id": key_id, "submitted_at": accepted + timedelta(milliseconds=n),
                 "payload": {"type": kind, "warehouse": warehouse, "sku": sku, "quantity": quantity}}
                for n, (job_id, kind, quantity) in enumerate(lost)])
            db.commit()

            started = time.monotonic()
            results = wait_for_jobs(c, [job_id for job_id, _, _ in lost], timeout=30)
            took = time.monotonic() - started
            swept = [s.value for s in scrape(worker.metrics_url)
                     if s.name == "stock_jobs_recovered_total" and s.labels == {"cause": "sweep"}]
    finally:
        worker.stop()
        api.stop()

    # In accepted order: 1 + 5 = 6, then 6 - 6 = 0 (the issue would fail out of order), then 2.
    assert [results[job_id]["result"] for job_id, _, _ in lost] == [
        {"on_hand_after": 6, "version_after": 2},
        {"on_hand_after": 0, "version_after": 3},
        {"on_hand_after": 2, "version_after": 4}]
    assert took < 15, f"the sweep (every 1 s) took {took:.1f} s"
    assert swept == [3], "operators see lost messages in stock_jobs_recovered_total{cause='sweep'}"
    db.rollback()
    assert db.scalars(select(Job.attempts).where(Job.id.in_([j for j, _, _ in lost]))).all() == [1, 1, 1]
    assert_books_balance(db)


def test_a_job_whose_message_comes_after_a_later_jobs_is_still_applied_first(auth, db):
    """With several API processes, each publishes a few milliseconds after its 202s, so a command
    accepted by one process after another process accepted an earlier one can reach the queue
    first. The worker applies the shard's older queued jobs before a batch: accepted order holds,
    at once, not at the next sweep."""
    prefix = f"overtake{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "1"}  # the sweep stays at its 60 s
    api, url = start_api(env, workers=1)
    worker = start_worker(f"{prefix}-w", queues=[f"{prefix}.0"], env=env)
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
            warehouse, sku = unique("OVER"), unique("OVERS")
            create_catalog(c, [warehouse], [sku])
            # The earlier job: committed, its message still on its way (here: never sent).
            key_id = db.scalar(select(ApiKey.id).where(
                ApiKey.prefix == auth["Authorization"].split("_", 2)[1]))
            earlier = f"{prefix}-earlier"
            db.execute(insert(Job), [{
                "id": earlier, "kind": "command", "status": "queued", "shard": 0, "attempts": 0,
                "api_key_id": key_id, "submitted_at": utcnow() - timedelta(seconds=1),
                "payload": {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 5}}])
            db.commit()
            # The later one, through the API: it would fail if applied first (nothing to issue).
            later = submit(c, {"type": "issue", "warehouse": warehouse, "sku": sku, "quantity": 5})
            started = time.monotonic()
            results = wait_for_jobs(c, [earlier, later], timeout=30)
            took = time.monotonic() - started
    finally:
        worker.stop()
        api.stop()
    assert results[earlier]["result"] == {"on_hand_after": 5, "version_after": 1}
    assert results[later]["status"] == "succeeded", results[later]
    assert results[later]["result"] == {"on_hand_after": 0, "version_after": 2}
    assert took < 15, f"took {took:.1f} s: found by the sweep, not before the later job's batch"
    assert_books_balance(db)
