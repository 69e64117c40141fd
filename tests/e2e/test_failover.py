"""Two workers on every queue; one of them stops (SIGSTOP) or dies (SIGKILL) in the middle of a
transaction that holds an ordering slot. The other takes the slot over within the stated bound, and
afterwards each command was applied once, in the order its client sent it.

The bound: a dead worker's connection closes and its locks go at once; a stopped one's transaction
is ended by the server after DB_IDLE_TRANSACTION_TIMEOUT_SECONDS. Then the next wake-up for the
slot, or the sweep (jobs waiting over SWEEP_AFTER_SECONDS, every SWEEP_INTERVAL_SECONDS), applies
what waits. With the defaults (5 s, 5 s, 1 s) that is within about 10 s; here they are shortened.
"""

import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from sqlalchemy import Engine, create_engine, select, text

from shared.models import LedgerEntry, StockLevel, Warehouse
from shared.settings import get_settings
from tests.e2e.conftest import assert_books_balance
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import Process, start_api, start_worker

IDLE_TIMEOUT = 3
ENV = {"SHARD_COUNT": "2", "DB_IDLE_TRANSACTION_TIMEOUT_SECONDS": str(IDLE_TIMEOUT),
       "SWEEP_INTERVAL_SECONDS": "1", "SWEEP_AFTER_SECONDS": "2"}
BOUND_SECONDS = 10


def _client_ports(pid: int) -> set[int]:
    """The local ports of the process's TCP connections (to find its database sessions)."""
    out = subprocess.run(["ss", "-tnp"], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        if f"pid={pid}," in line:
            local = line.split()[3]
            ports.add(int(local.rsplit(":", 1)[1]))
    return ports


def _holds_locks(engine: Engine, pid: int) -> bool:
    """Whether the process has a database transaction holding row locks open right now (its apply
    transaction locks its slots first: a transaction with only table locks took none)."""
    ports = _client_ports(pid)
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT p.HOST FROM information_schema.INNODB_TRX t "
            "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
            "WHERE t.trx_rows_locked > 0")).scalars().all()
    return any(int(host.rsplit(":", 1)[1]) in ports for host in rows if re.search(r":\d+$", host))


# MariaDB refreshes information_schema.INNODB_TRX at most every 0.1 s: look a little later.
TRX_TABLE_REFRESH_SECONDS = 0.15


def _caught_in_a_transaction(engine: Engine, workers: list[Process], sig: int) -> Process | None:
    """Send `sig` to a worker at a moment it holds a transaction: stop one, look, let it go on if
    it holds none, try the next. Returns the worker caught (SIGKILL is sent only once it is)."""
    for attempt in range(150):
        worker = workers[attempt % len(workers)]
        os.kill(worker.popen.pid, signal.SIGSTOP)
        time.sleep(TRX_TABLE_REFRESH_SECONDS)
        if _holds_locks(engine, worker.popen.pid):
            if sig != signal.SIGSTOP:
                os.kill(worker.popen.pid, sig)
            return worker
        os.kill(worker.popen.pid, signal.SIGCONT)
        time.sleep(0.002)
    return None


class SteadyClient:
    """One client sending receive/issue pairs on one warehouse, each after the previous 202: its
    commands must be applied in the order it sent them."""

    def __init__(self, url: str, auth: dict, warehouse: str, sku: str) -> None:
        self.sent: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, auth, warehouse, sku), daemon=True)
        self._thread.start()

    def _run(self, url: str, auth: dict, warehouse: str, sku: str) -> None:
        with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
            while not self._stop.is_set():
                for kind in ("receive", "issue"):
                    self.sent.append(submit(c, {"type": kind, "warehouse": warehouse, "sku": sku,
                                                "quantity": 1}))
                time.sleep(0.002)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(30)
        return self.sent


@pytest.fixture
def stack(auth, broker) -> Iterator[tuple[str, list[Process], dict]]:
    _, broker_settings, created_queues = broker
    prefix = f"failover{uuid.uuid4().hex[:8]}"
    env = {**ENV, "QUEUE_PREFIX": prefix, **broker_settings}
    api, url = start_api(env, workers=1)
    queues = [f"{prefix}.0", f"{prefix}.1"]
    created_queues.extend(queues)
    workers = [start_worker(f"{prefix}-{n}", queues, env=env) for n in range(2)]
    yield url, workers, env
    for worker in workers:
        if worker.popen.poll() is None:
            os.kill(worker.popen.pid, signal.SIGCONT)
        worker.stop()
    api.stop()


def _ledger_order(db, warehouse: str) -> list[str]:
    db.rollback()
    return list(db.scalars(select(LedgerEntry.job_id)
                           .join(StockLevel, StockLevel.id == LedgerEntry.stock_level_id)
                           .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
                           .where(Warehouse.code == warehouse).order_by(LedgerEntry.version)))


@pytest.mark.parametrize("sig, resume", [
    (signal.SIGSTOP, lambda w: os.kill(w.popen.pid, signal.SIGCONT)),
    (signal.SIGKILL, lambda w: None),
], ids=["stopped", "killed"])
def test_the_other_worker_takes_the_slot_over_within_the_bound(stack, auth, db, sig: int,
                                                               resume: Callable[[Process], None]):
    url, workers, _ = stack
    engine = create_engine(get_settings().database_url)
    with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
        warehouse, sku = unique("FO"), unique("FOS")
        create_catalog(c, [warehouse], [sku])
        wait_for_jobs(c, [submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku,
                                     "quantity": 1000})])
        # Every command on one warehouse, so any transaction a worker holds holds its slot.
        clients = [SteadyClient(url, auth, warehouse, sku) for _ in range(4)]
        time.sleep(1)
        victim = _caught_in_a_transaction(engine, workers, sig)
        assert victim is not None, "never caught a worker in a transaction"
        caught = time.monotonic()

        # A command for the same warehouse, sent after the worker stopped holding its slot.
        probe = submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1})
        wait_for_jobs(c, [probe], timeout=BOUND_SECONDS + 10)
        took_over = time.monotonic() - caught

        resume(victim)
        time.sleep(1)
        sent = [client.stop() for client in clients]
        results = wait_for_jobs(c, [job_id for jobs in sent for job_id in jobs], timeout=60)
    engine.dispose()

    print(f"{'stopped' if sig == signal.SIGSTOP else 'killed'}: the other worker applied the "
          f"slot's next command {took_over:.1f} s after")
    assert took_over < BOUND_SECONDS
    assert {r["status"] for r in results.values()} == {"succeeded"}
    applied = _ledger_order(db, warehouse)
    for jobs in sent:
        mine = set(jobs)
        assert [j for j in applied if j in mine] == jobs, "a command was applied out of its client's order"
    if sig == signal.SIGSTOP:
        assert victim.popen.poll() is None, "the stopped worker carries on once resumed"
    assert_books_balance(db)
