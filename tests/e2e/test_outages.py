"""Servers going away: Redis restarted with queued work, MySQL unreachable while the API accepts."""

import base64
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy.engine import make_url

from shared.ordering import slot_for
from tests.conftest import DATABASE_URL
from tests.e2e.conftest import assert_books_balance
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import LOGS, free_port, start_api, start_worker
from tests.support.tcp_proxy import TcpProxy


def _start_redis(port: int, data_dir: Path) -> None:
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port),
                    "--dir", str(data_dir), "--appendonly", "yes", "--appendfsync", "always",
                    "--save", "", "--maxmemory-policy", "noeviction",
                    "--logfile", str(LOGS / f"redis-{port}.log")], check=True)
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("test redis did not start")


def _queued_slots(port: int, queue: str) -> list[int]:
    """The slots the wake-ups waiting in this queue name (a wake-up holds a list of them)."""
    messages = redis.Redis(port=port).lrange(queue, 0, -1)
    return [slot for raw in messages for slot in json.loads(base64.b64decode(json.loads(raw)["body"]))[0][0]]


@pytest.fixture
def own_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    _start_redis(port, tmp_path)
    yield port, tmp_path
    try:
        redis.Redis(port=port).shutdown(nosave=True)
    except redis.ConnectionError:
        pass


def test_queued_wakeups_survive_a_redis_restart(own_redis, auth, db):
    port, data_dir = own_redis
    prefix = f"rr{uuid.uuid4().hex[:8]}"
    # The sweep is kept out of it: the jobs can only be applied by the wake-ups Redis kept.
    env = {"REDIS_URL": f"redis://127.0.0.1:{port}/0", "QUEUE_PREFIX": prefix, "SHARD_COUNT": "1",
           "SWEEP_AFTER_SECONDS": "600"}
    api, url = start_api(env, workers=1)
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
            warehouse, sku = unique("W"), unique("SKU")
            create_catalog(c, [warehouse], [sku])
            job_ids = [submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1})
                       for _ in range(50)]

            # No worker yet: the wake-ups wait in Redis. Kill it hard and start it on the same files.
            queue = f"{prefix}.0"
            deadline = time.monotonic() + 10
            while slot_for(warehouse) not in _queued_slots(port, queue) and time.monotonic() < deadline:
                time.sleep(0.05)
            subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], check=False)
            time.sleep(0.5)
            _start_redis(port, data_dir)
            assert slot_for(warehouse) in _queued_slots(port, queue)

            worker = start_worker(f"{prefix}-w", queues=[f"{prefix}.0"], env=env)
            try:
                results = wait_for_jobs(c, job_ids, timeout=120)
            finally:
                worker.stop()
            assert {r["status"] for r in results.values()} == {"succeeded"}
            assert c.get(f"/v1/stock/{warehouse}/{sku}").json()["on_hand"] == 50
    finally:
        api.stop()
    assert_books_balance(db)


def test_the_worker_waits_out_a_database_outage_and_then_finishes_every_job(auth, db):
    database = make_url(DATABASE_URL)
    proxy = TcpProxy(database.host or "127.0.0.1", database.port or 3306)
    prefix = f"db{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "1"}
    worker_env = {**env, "DATABASE_URL": database.set(host="127.0.0.1", port=proxy.port)
                  .render_as_string(hide_password=False)}
    api, url = start_api(env, workers=1)  # the API talks to MySQL directly and keeps accepting
    worker = start_worker(f"{prefix}-w", queues=[f"{prefix}.0"], env=worker_env)
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
            warehouse, sku = unique("W"), unique("SKU")
            create_catalog(c, [warehouse], [sku])
            first = submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1})
            wait_for_jobs(c, [first])

            proxy.down()
            during = [submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1})
                      for _ in range(20)]
            time.sleep(4)
            assert c.get(f"/v1/jobs/{during[-1]}").json()["status"] in ("queued", "running")
            proxy.up()

            results = wait_for_jobs(c, during, timeout=120)
            assert {r["status"] for r in results.values()} == {"succeeded"}
            assert c.get(f"/v1/stock/{warehouse}/{sku}").json()["on_hand"] == 21
    finally:
        worker.stop()
        api.stop()
        proxy.close()
    assert "database unavailable" in worker.log_path.read_text()
    assert_books_balance(db)


def test_while_the_broker_is_away_new_work_gets_503_and_accepted_work_is_queued_when_it_is_back(
        auth, db, broker):
    """A 202 means the job row is committed; the API sends its wake-up just after. If the broker
    refuses it, the API keeps it and retries, and refuses new work (503, no row) until the broker
    takes it: then every accepted job is applied, in accepted order."""
    from sqlalchemy import select

    from shared.models import Job

    kind, broker_settings, created_queues = broker
    real = make_url(broker_settings.get("BROKER_URL", os.environ["REDIS_URL"]))
    proxy = TcpProxy(real.host or "127.0.0.1", real.port or (6379 if kind == "redis" else 5672))
    prefix = f"nobroker{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "1", **broker_settings}
    created_queues.append(f"{prefix}.0")
    through_proxy = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    api, url = start_api({**env, "BROKER_URL": through_proxy}, workers=1)
    worker = None
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=60) as c:
            warehouse, sku = unique("W"), unique("SKU")
            create_catalog(c, [warehouse], [sku])
            command = {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1}
            proxy.down()
            accepted: list[str] = []
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                key = str(uuid.uuid4())
                r = c.post("/v1/commands", json=command, headers={"Idempotency-Key": key})
                if r.status_code != 202:
                    break
                accepted.append(r.json()["job_id"])
            assert r.status_code == 503, r.text
            assert r.json()["type"] == "/problems/unavailable"
            assert int(r.headers["retry-after"]) >= 1
            assert db.scalar(select(Job.id).where(Job.idempotency_key == key)) is None
            assert accepted, "the first job is accepted before the publish fails"

            proxy.up()
            worker = start_worker(f"{prefix}-w", queues=[f"{prefix}.0"], env=env)
            results = wait_for_jobs(c, accepted, timeout=60)
            deadline = time.monotonic() + 20
            while (r := c.post("/v1/commands", json=command)).status_code != 202:
                assert time.monotonic() < deadline, r.text
                time.sleep(0.2)
    finally:
        if worker is not None:
            worker.stop()
        api.stop()
        proxy.close()
    assert [results[j]["result"]["version_after"] for j in accepted] == list(range(1, len(accepted) + 1))
    # The last 202 came only once the API's retry had gone through (new work waits for that).
    assert "the broker took the wake-ups that waited for it" in api.log_path.read_text()
    assert_books_balance(db)
