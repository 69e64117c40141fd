"""Jobs whose wake-up the broker lost are applied by a running worker's sweep (worker/sweep.py),
in order and once, without a restart; a wake-up applies the older waiting jobs first.

Each test has a database of its own, so that no other test's workers apply its jobs first."""

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import httpx
from sqlalchemy import insert, select

from shared import celery_app as broker
from shared.models import ApiKey, Job, utcnow
from shared.ordering import slot_for
from tests.e2e.conftest import OwnDatabase, assert_books_balance
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import Process, start_api, start_worker
from tests.support.promql import scrape


@contextmanager
def _api_and_worker(prefix: str, database: OwnDatabase, **settings: str) -> Iterator[tuple[str, Process]]:
    """An API and a worker on one shard queue and a database of their own: (the API's URL, the
    worker)."""
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "1", "DATABASE_URL": database.address, **settings}
    api, url = start_api(env, workers=1)
    worker = start_worker(f"{prefix}-w", queues=[f"{prefix}.0"], env=env)
    try:
        yield url, worker
    finally:
        worker.stop()
        api.stop()


def _queued_without_message(db, auth, jobs: list[tuple[str, dict]], submitted_at: datetime) -> None:
    """Committed jobs, as (id, command), whose wake-ups never reached the queue."""
    key_id = db.scalar(select(ApiKey.id).where(ApiKey.prefix == auth["Authorization"].split("_", 2)[1]))
    db.execute(insert(Job), [
        {"id": job_id, "kind": "command", "status": "queued", "slot": slot_for(command["warehouse"]),
         "attempts": 0, "api_key_id": key_id, "submitted_at": submitted_at + timedelta(milliseconds=n),
         "payload": command}
        for n, (job_id, command) in enumerate(jobs)])
    db.commit()


def test_a_running_worker_finishes_jobs_whose_messages_were_lost_in_order(own_database):
    prefix = f"lost{uuid.uuid4().hex[:8]}"
    auth, db = own_database.auth(), own_database.session()
    with _api_and_worker(prefix, own_database, SWEEP_INTERVAL_SECONDS="1",
                         SWEEP_AFTER_SECONDS="3") as (url, worker), \
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
            for job_id, kind, quantity in lost], utcnow())

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
    assert 2.5 < took < 8, f"the sweep (every 1 s, for jobs waiting over 3 s) took {took:.1f} s"
    assert swept == [3], "operators see lost messages in stock_jobs_recovered_total{cause='sweep'}"
    db.rollback()
    assert db.scalars(select(Job.attempts).where(Job.id.in_([j for j, _, _ in lost]))).all() == [1, 1, 1]
    assert_books_balance(db)


def test_a_wakeup_applies_its_slots_older_waiting_jobs_first_in_accepted_order(own_database, monkeypatch):
    """A wake-up names slots, not jobs: whatever waits in them is applied oldest first, so a job
    whose own wake-up is late or lost goes in its turn, not at the next sweep."""
    prefix = f"overtake{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(broker, "queue_name", lambda shard: f"{prefix}.{shard}")  # the stack's queues
    auth, db = own_database.auth(), own_database.session()
    with _api_and_worker(prefix, own_database, SWEEP_AFTER_SECONDS="600") as (url, _), \
            httpx.Client(base_url=url, headers=auth, timeout=30) as c:
        warehouse, sku = unique("OVER"), unique("OVERS")
        create_catalog(c, [warehouse], [sku])

        def command(kind: str, quantity: int) -> dict:
            return {"type": kind, "warehouse": warehouse, "sku": sku, "quantity": quantity}

        # Accepted in this order, none with a wake-up on its way. Out of order the third fails
        # (nothing to issue yet) and versions differ.
        jobs = [(f"{prefix}-{n}", cmd) for n, cmd in enumerate(
            [command("receive", 1), command("receive", 5), command("issue", 6), command("receive", 2)])]
        _queued_without_message(db, auth, jobs, utcnow())
        started = time.monotonic()
        broker.send_wakeups({0: [slot_for(warehouse)]})
        results = wait_for_jobs(c, [job_id for job_id, _ in jobs], timeout=30)
        took = time.monotonic() - started
    assert [results[job_id]["result"] for job_id, _ in jobs] == [
        {"on_hand_after": 1, "version_after": 1}, {"on_hand_after": 6, "version_after": 2},
        {"on_hand_after": 0, "version_after": 3}, {"on_hand_after": 2, "version_after": 4}]
    assert took < 5, f"took {took:.1f} s: found by the sweep, not by the wake-up"
    assert_books_balance(db)
