"""Clients that wait for their outcome: `Prefer: wait=N` on the POST itself (both entrances: the
fast path and the route), on a replay, on many jobs at once, and what waiting costs the service."""

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import redis
from sqlalchemy import func, select

from shared.models import Job
from shared.redis_client import REDIS_POOL_SIZE
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import Process, start_api, start_worker

WAIT = {"Prefer": "wait=10"}


def _command(warehouse: str, sku: str, kind: str = "receive", quantity: int = 3) -> dict:
    return {"type": kind, "warehouse": warehouse, "sku": sku, "quantity": quantity}


@pytest.fixture
def catalog(client: httpx.Client) -> tuple[str, str]:
    warehouse, sku = unique("WAIT"), unique("WAITS")
    create_catalog(client, [warehouse], [sku])
    return warehouse, sku


def test_a_command_that_waits_gets_its_outcome_in_the_answer(client, catalog):
    """No Idempotency-Key: the fast path answers."""
    warehouse, sku = catalog
    r = client.post("/v1/commands", json=_command(warehouse, sku), headers=WAIT)
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["status"] == "succeeded" and job["result"] == {"on_hand_after": 3, "version_after": 1}
    assert r.headers["content-location"] == f"/v1/jobs/{job['job_id']}"
    assert r.headers["preference-applied"] == "wait=10"
    assert "owner" not in job
    assert client.get(r.headers["content-location"]).json() == job

    failed = client.post("/v1/commands", json=_command(warehouse, sku, "issue", 100), headers=WAIT)
    assert failed.status_code == 200
    assert failed.json()["status"] == "failed"
    assert failed.json()["error"]["type"] == "/problems/insufficient-stock"


def test_a_replay_that_waits_names_the_original_job_and_its_outcome(client, catalog):
    """With an Idempotency-Key: the route answers, the same way."""
    warehouse, sku = catalog
    key = {"Idempotency-Key": str(uuid.uuid4()), **WAIT}
    first = client.post("/v1/commands", json=_command(warehouse, sku), headers=key)
    again = client.post("/v1/commands", json=_command(warehouse, sku), headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-location"] == first.headers["content-location"]
    assert client.get(f"/v1/stock/{warehouse}/{sku}").json()["on_hand"] == 3


def test_a_batch_that_waits_gets_its_counts(client, catalog):
    warehouse, sku = catalog
    r = client.post("/v1/batches", headers=WAIT, json={"mode": "independent", "commands": [
        _command(warehouse, sku), _command(warehouse, sku, "issue", 1),
        _command(warehouse, sku, "issue", 99)]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "partially_failed"
    assert r.json()["result"] == {"total": 3, "succeeded": 2, "failed": 1}


def test_many_jobs_are_read_and_waited_for_at_once_and_only_the_callers(client, catalog, api_url, workers):
    warehouse, sku = catalog
    mine = [submit(client, _command(warehouse, sku)) for _ in range(3)]
    from tests.e2e.conftest import make_key
    other = {"Authorization": f"Bearer {make_key({'read', 'write'}, 'other-partner')}"}
    with httpx.Client(base_url=api_url, headers=other, timeout=30) as theirs:
        foreign = submit(theirs, _command(warehouse, sku))
    ids = ",".join([*mine, foreign, str(uuid.uuid4())])
    r = client.get("/v1/jobs", params={"ids": ids}, headers=WAIT)
    assert r.status_code == 200, r.text
    assert [job["job_id"] for job in r.json()["items"]] == mine
    assert {job["status"] for job in r.json()["items"]} == {"succeeded"}
    assert r.headers["preference-applied"] == "wait=10"
    assert client.get("/v1/jobs", params={"ids": ""}).status_code == 422
    assert client.get("/v1/jobs", params={"ids": ",".join(["a"] * 101)}).status_code == 422


@pytest.fixture
def idle_stack(auth) -> Iterator[tuple[str, str, dict]]:
    """An API whose queue no worker consumes yet (jobs wait), with a small waiting bound."""
    prefix = f"idle{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "MAX_WAITING_REQUESTS_PER_KEY": "3", "SWEEP_AFTER_SECONDS": "600"}
    api, url = start_api(env, workers=1)
    yield url, prefix, env
    api.stop()


def test_a_job_that_does_not_end_in_time_is_answered_202_and_past_the_bound_nothing_is_queued(
        idle_stack, auth, db):
    url, prefix, env = idle_stack
    with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
        warehouse, sku = unique("IDLE"), unique("IDLES")
        create_catalog(c, [warehouse], [sku])
        started = time.monotonic()
        r = c.post("/v1/commands", json=_command(warehouse, sku), headers={"Prefer": "wait=1"})
        assert r.status_code == 202 and 1 <= time.monotonic() - started < 3
        assert r.headers["preference-applied"] == "wait=1"
        assert r.headers["location"] == f"/v1/jobs/{r.json()['job_id']}"

        # Three requests of this key wait (its bound); a fourth is refused before it is queued.
        answers: list[httpx.Response] = []

        def wait_once() -> None:
            with httpx.Client(base_url=url, headers=auth, timeout=30) as own:
                answers.append(own.post("/v1/commands", json=_command(warehouse, sku),
                                        headers={"Prefer": "wait=4"}))

        waiting = [threading.Thread(target=wait_once) for _ in range(3)]
        for thread in waiting:
            thread.start()
        time.sleep(1)
        db.rollback()
        before = db.scalar(select(func.count()).select_from(Job).where(Job.idempotency_key.is_(None)))
        refused = c.post("/v1/commands", json=_command(warehouse, sku), headers={"Prefer": "wait=4"})
        db.rollback()
        after = db.scalar(select(func.count()).select_from(Job).where(Job.idempotency_key.is_(None)))
        assert refused.status_code == 429, refused.text
        assert refused.json()["type"] == "/problems/too-many-waiting"
        assert refused.headers["retry-after"] == "1"
        assert after == before, "a refused request queued a job"
        # Without Prefer: wait the same key is still served.
        assert c.post("/v1/commands", json=_command(warehouse, sku)).status_code == 202

        worker = start_worker(f"{prefix}-w", [f"{prefix}.0", f"{prefix}.1"], env=env)
        try:
            for thread in waiting:
                thread.join(30)
        finally:
            worker.stop()
    assert len(answers) == 3


def _redis_clients_of(pid: int) -> list[dict]:
    """The Redis connections a process holds (told apart by its sockets' ports)."""
    out = subprocess.run(["ss", "-tnp"], capture_output=True, text=True, check=True).stdout
    ports = {line.split()[3].rsplit(":", 1)[1] for line in out.splitlines() if f"pid={pid}," in line}
    admin = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    return [c for c in admin.client_list() if c["addr"].rsplit(":", 1)[1] in ports]


def test_waiting_requests_share_one_subscription_per_api_process(auth, db):
    """A waiting request holds no Redis connection: the process's pools are bounded (by the
    requests that use Redis at the same instant, shared/redis_client.py), whatever waits."""
    prefix = f"share{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix}
    api, url = start_api(env, workers=1)
    worker: Process | None = None
    answers: list[int] = []

    def poll(job_id: str) -> None:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as own:
            answers.append(own.get(f"/v1/jobs/{job_id}", headers={"Prefer": "wait=25"}).status_code)

    try:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
            warehouse, sku = unique("SHARE"), unique("SHARES")
            create_catalog(c, [warehouse], [sku])
            job_ids = [submit(c, _command(warehouse, sku)) for _ in range(400)]
            polls = [threading.Thread(target=poll, args=(j,)) for j in job_ids]
            for thread in polls[:200]:
                thread.start()
            time.sleep(3)  # 200 waiting
            with_200 = _redis_clients_of(api.popen.pid)
            for thread in polls[200:]:
                thread.start()
            time.sleep(3)  # 400 waiting
            with_400 = _redis_clients_of(api.popen.pid)
            worker = start_worker(f"{prefix}-w", [f"{prefix}.0", f"{prefix}.1"], env=env)
            for thread in polls:
                thread.join(30)
            results = wait_for_jobs(c, job_ids)
    finally:
        if worker is not None:
            worker.stop()
        api.stop()
    assert answers == [200] * 400
    assert {r["status"] for r in results.values()} == {"succeeded"}
    assert [c["name"] for c in with_400].count(f"stock-waiters-{api.popen.pid}") == 1
    # Two bounded pools (status copies, rate limit), the publisher's and the writer's own
    # connections, and the one subscription.
    bound = 2 * REDIS_POOL_SIZE + 4
    assert len(with_200) <= bound and len(with_400) <= bound, (len(with_200), len(with_400))
