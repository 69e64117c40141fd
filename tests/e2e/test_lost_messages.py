"""Jobs whose message the broker lost are finished by a running worker's sweep (worker/sweep.py),
in order and once, without a restart."""

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import httpx
from sqlalchemy import insert, select

from shared import celery_app as broker
from shared.models import ApiKey, Job, utcnow
from tests.e2e.conftest import assert_books_balance
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import Process, start_api, start_worker
from tests.support.promql import scrape


@contextmanager
def _api_and_worker(prefix: str, **settings: str) -> Iterator[tuple[str, Process]]:
    """An API and a worker on one shard queue of their own: (the API's URL, the worker)."""
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "1", **settings}
    api, url = start_api(env, workers=1)
    worker = start_worker(f"{prefix}-w", queues=[f"{prefix}.0"], env=env)
    try:
        yield url, worker
    finally:
        worker.stop()
        api.stop()


def _queued_without_message(db, auth, jobs: list[tuple[str, dict]], submitted_at: datetime) -> None:
    """Committed jobs, as (id, command), whose messages never reached the queue."""
    key_id = db.scalar(select(ApiKey.id).where(ApiKey.prefix == auth["Authorization"].split("_", 2)[1]))
    db.execute(insert(Job), [
        {"id": job_id, "kind": "command", "status": "queued", "shard": 0, "attempts": 0,
         "api_key_id": key_id, "submitted_at": submitted_at + timedelta(milliseconds=n), "payload": command}
        for n, (job_id, command) in enumerate(jobs)])
    db.commit()


def test_a_running_worker_finishes_jobs_whose_messages_were_lost_in_order(auth, db):
    prefix = f"lost{uuid.uuid4().hex[:8]}"
    with _api_and_worker(prefix, SWEEP_INTERVAL_SECONDS="1") as (url, worker), \
            httpx.Client(base_url=url, headers=auth, timeout=30) as c:
        warehouse, sku = unique("LOST"), unique("LOSTS")
        create_catalog(c, [warehouse], [sku])
        # The worker is up and has nothing to do: it started before the jobs below existed.
        first = submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1})
        assert wait_for_jobs(c, [first])[first]["status"] == "succeeded"

        # What the API leaves behind when Redis loses its last appends after the commit.
        lost = [(f"{prefix}-{n}", kind, quantity) for n, (kind, quantity) in
                enumerate([("receive", 5), ("issue", 6), ("receive", 2)])]
        _queued_without_message(db, auth, [
            (job_id, {"type": kind, "warehouse": warehouse, "sku": sku, "quantity": quantity})
            for job_id, kind, quantity in lost], utcnow() - timedelta(seconds=5))

        started = time.monotonic()
        results = wait_for_jobs(c, [job_id for job_id, _, _ in lost], timeout=30)
        took = time.monotonic() - started
        swept = [s.value for s in scrape(worker.metrics_url)
                 if s.name == "stock_jobs_recovered_total" and s.labels == {"cause": "sweep"}]

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


def test_a_batch_is_applied_with_its_shards_earlier_queued_jobs_in_accepted_order(auth, db, monkeypatch):
    """With several API processes, each publishes a few milliseconds after its 202s, a few groups
    per message, so a message can carry jobs accepted before and after another process's job that
    is still on its way. The worker applies its shards' queued jobs accepted up to the batch's
    latest, in accepted order: at once, not at the next sweep."""
    prefix = f"overtake{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(broker, "queue_name", lambda shard: f"{prefix}.{shard}")
    with _api_and_worker(prefix) as (url, _), httpx.Client(base_url=url, headers=auth, timeout=30) as c:
        warehouse, sku = unique("OVER"), unique("OVERS")
        create_catalog(c, [warehouse], [sku])

        def command(kind: str, quantity: int) -> dict:
            return {"type": kind, "warehouse": warehouse, "sku": sku, "quantity": quantity}

        # Accepted in this order; only the second and fourth reach the queue, in one message.
        # Out of order the third fails (nothing to issue yet) and versions differ.
        jobs = [(f"{prefix}-{n}", cmd) for n, cmd in enumerate(
            [command("receive", 1), command("receive", 5), command("issue", 6), command("receive", 2)])]
        _queued_without_message(db, auth, jobs, utcnow() - timedelta(seconds=4))
        started = time.monotonic()
        broker.enqueue_groups({0: [jobs[1][0], jobs[3][0]]})  # the sweep stays at its 60 s
        results = wait_for_jobs(c, [job_id for job_id, _ in jobs], timeout=30)
        took = time.monotonic() - started
    assert [results[job_id]["result"] for job_id, _ in jobs] == [
        {"on_hand_after": 1, "version_after": 1}, {"on_hand_after": 6, "version_after": 2},
        {"on_hand_after": 0, "version_after": 3}, {"on_hand_after": 2, "version_after": 4}]
    assert took < 15, f"took {took:.1f} s: found by the sweep, not with the batch"
    assert_books_balance(db)
