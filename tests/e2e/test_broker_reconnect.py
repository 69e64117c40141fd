"""After the broker comes back, a worker that was left running is as quick as before the fault, and
jobs whose wake-ups the broker lost are applied by the sweep within its bound: no restart needed.

Each fault on a Redis of the test's own (never the machine's): a restart with append-only
persistence, a restart without persistence (its waiting messages are gone), and a crash (kill -9).
"""

import signal
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import insert, select

from shared.models import ApiKey, Job, utcnow
from shared.ordering import slot_for
from tests.e2e.conftest import assert_books_balance
from tests.support.client import create_catalog, unique, wait_for_jobs
from tests.support.processes import LOGS, free_port, start_api, start_worker

SWEEP = {"SWEEP_INTERVAL_SECONDS": "1", "SWEEP_AFTER_SECONDS": "2"}
# The sweep looks every second for jobs waiting over two: a lost wake-up's job is applied within
# about three seconds, plus a drain and a poll that may first try the Redis that is away.
SWEEP_BOUND_SECONDS = 1 + 2 + 3


class OwnRedis:
    def __init__(self, data_dir: Path, persistent: bool) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.persistent = persistent
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
                "--save", "", "--maxmemory-policy", "noeviction",
                "--logfile", str(LOGS / f"redis-{self.port}.log")]
        persistence = ["yes", "--appendfsync", "everysec"] if self.persistent else ["no"]
        args += ["--appendonly", *persistence]
        self.process = subprocess.Popen(args)
        client = redis.Redis(port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("test redis did not start")

    def shutdown(self) -> None:
        redis.Redis(port=self.port).shutdown(nosave=not self.persistent)
        assert self.process is not None
        self.process.wait(10)

    def crash(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


FAULTS = {
    "restart with append-only persistence": (True, OwnRedis.shutdown),
    "restart without persistence": (False, OwnRedis.shutdown),
    "crash (kill -9) with append-only persistence": (True, OwnRedis.crash),
}


@pytest.fixture(params=list(FAULTS))
def fault(request, tmp_path) -> Iterator[tuple[OwnRedis, str]]:
    persistent, _ = FAULTS[request.param]
    LOGS.mkdir(parents=True, exist_ok=True)
    own = OwnRedis(tmp_path, persistent)
    own.start()
    yield own, request.param
    own.stop()


def _seconds_to_outcome(client: httpx.Client, command: dict) -> float:
    r = client.post("/v1/commands", json=command)
    assert r.status_code == 202, r.text
    job = client.get(f"/v1/jobs/{r.json()['job_id']}", headers={"Prefer": "wait=20"}).json()
    assert job["status"] == "succeeded", job
    accepted, completed = (datetime.fromisoformat(job[t]) for t in ("submitted_at", "completed_at"))
    return (completed - accepted).total_seconds()


def _until_accepting(client: httpx.Client, command: dict, timeout: float = 30) -> None:
    """The API refuses work (503) while its wake-ups cannot be sent; wait until it takes them."""
    deadline = time.monotonic() + timeout
    while (r := client.post("/v1/commands", json=command)).status_code != 202:
        assert r.status_code == 503, r.text
        assert time.monotonic() < deadline, "the API did not accept work again"
        time.sleep(0.2)
    wait_for_jobs(client, [r.json()["job_id"]], timeout=30)


def _without_wakeups(db, auth: dict, commands: list[dict], submitted_at: datetime) -> list[str]:
    """Committed jobs whose wake-ups the broker lost."""
    key_id = db.scalar(select(ApiKey.id).where(ApiKey.prefix == auth["Authorization"].split("_", 2)[1]))
    ids = [str(uuid.uuid4()) for _ in commands]
    db.execute(insert(Job), [
        {"id": job_id, "kind": "command", "status": "queued", "slot": slot_for(command["warehouse"]),
         "attempts": 0, "api_key_id": key_id, "payload": command,
         "submitted_at": submitted_at + timedelta(milliseconds=n)}
        for n, (job_id, command) in enumerate(zip(ids, commands, strict=True))])
    db.commit()
    return ids


def test_a_running_worker_recovers_from_the_broker_fault(fault, auth, db):
    own, name = fault
    break_it = FAULTS[name][1]
    prefix = f"reconnect{uuid.uuid4().hex[:8]}"
    env = {"REDIS_URL": f"redis://127.0.0.1:{own.port}/0", "QUEUE_PREFIX": prefix, "SHARD_COUNT": "2",
           **SWEEP}
    api, url = start_api(env, workers=1)
    worker = start_worker(f"{prefix}-w", [f"{prefix}.0", f"{prefix}.1"], env=env)
    try:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
            warehouse, quiet, sku = unique("RC"), unique("RCQ"), unique("RCS")
            create_catalog(c, [warehouse, quiet], [sku])
            receive = {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1}
            before = [_seconds_to_outcome(c, receive) for _ in range(10)]

            break_it(own)
            # Jobs committed just before, in a warehouse nothing else wakes, their wake-ups gone.
            lost = _without_wakeups(db, auth, [{**receive, "warehouse": quiet}] * 3, utcnow())
            committed = time.monotonic()
            time.sleep(1)
            own.start()
            _until_accepting(c, receive)
            results = wait_for_jobs(c, lost, timeout=30)
            swept_within = time.monotonic() - committed
            after = [_seconds_to_outcome(c, receive) for _ in range(10)]
    finally:
        worker.stop()
        api.stop()

    print(f"{name}: outcome median {statistics.median(before) * 1000:.0f} ms before, "
          f"{statistics.median(after) * 1000:.0f} ms after; lost wake-ups' jobs applied "
          f"{swept_within:.1f} s after their commit")
    assert {r["status"] for r in results.values()} == {"succeeded"}
    assert swept_within < SWEEP_BOUND_SECONDS, f"lost wake-ups' jobs applied {swept_within:.1f} s late"
    # As quick as before the fault: no timer left dead by the reconnect (it used to be seconds).
    assert statistics.median(after) < max(3 * statistics.median(before), 0.25), (before, after)
    assert_books_balance(db)
