"""Resharding without draining: SHARD_COUNT goes from 2 to 8 and back to 2 while clients keep
sending, each time the workers and the two API processes restarted one at a time with the new count.
Afterwards no command is lost, applied twice or applied out of the order its client sent it, and the
books balance, on either broker.

Why it holds (docs/design.md, "Changing SHARD_COUNT"): the order comes from the ordering slot, which
never changes; the queue is only the slot modulo SHARD_COUNT and carries a wake-up, "look at these
slots". During a roll-out some wake-ups go to a queue no running worker consumes (a new API's
stock.5 before any worker has 8 shards; an old API's stock.5 after every worker has 2): their jobs
are applied by the next wake-up for the same slot on a queue that is consumed, or by the sweep. The
wake-ups left in stock.2..7 after the way down are never consumed and are counted here.
"""

import itertools
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import create_engine

from shared.ordering import shard_for_slot, slot_for
from shared.queue_stats import rabbitmq_lengths, redis_lengths
from shared.settings import get_settings
from tests.support.brokers import RABBITMQ_URL
from tests.support.client import create_catalog, unique
from tests.support.invariants import broken_promises, wait_until_finished
from tests.support.processes import Process, start_api, start_worker
from tests.support.sequential import SequentialClient

SWEEP = {"SWEEP_INTERVAL_SECONDS": "1", "SWEEP_AFTER_SECONDS": "2"}
FEW, MANY = 2, 8
# Load in each mixed state of a roll-out (some processes on the old count, some on the new).
STEP_SECONDS = 1.5
# Between a client's receive/issue pairs: a steady load that leaves the two cores some room, so the
# eight restarts stay quick.
CLIENT_PAUSE = 0.05


@dataclass
class Fleet:
    """Two APIs and two workers, each restarted in turn with a new SHARD_COUNT."""

    prefix: str
    env: dict[str, str]
    apis: list[tuple[Process, str]] = field(default_factory=list)
    workers: list[Process] = field(default_factory=list)
    generation: int = 0
    logs: list[Process] = field(default_factory=list)

    def queues(self, shards: int) -> list[str]:
        return [f"{self.prefix}.{n}" for n in range(shards)]

    def settings(self, shards: int) -> dict[str, str]:
        return {**self.env, "SHARD_COUNT": str(shards)}

    def start(self, shards: int) -> None:
        self.apis = [start_api(self.settings(shards), workers=1) for _ in range(2)]
        self.workers = [self._worker(n, shards) for n in range(2)]

    def _worker(self, n: int, shards: int) -> Process:
        # A fresh name each time: start_worker waits for "ready." in the process's own log.
        worker = start_worker(f"{self.prefix}-{n}-g{self.generation}", self.queues(shards),
                              env=self.settings(shards))
        self.logs.append(worker)
        return worker

    def urls(self) -> list[str]:
        return [url for _, url in self.apis]

    def roll(self, shards: int) -> None:
        """worker 0, API 0, worker 1, API 1: each stopped (TERM) and started with `shards`, under
        load, so both kinds of mixed state occur (old API with new workers, new API with old)."""
        self.generation += 1
        for n in range(2):
            self.workers[n].stop()
            self.workers[n] = self._worker(n, shards)
            time.sleep(STEP_SECONDS)
            self.apis[n][0].stop()
            self.apis[n] = start_api(self.settings(shards), workers=1)
            time.sleep(STEP_SECONDS)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        for api, _ in self.apis:
            api.stop()

    def swept(self) -> int:
        """Jobs the workers' sweeps applied (their wake-ups went where no worker was listening)."""
        pattern = re.compile(rb"the sweep applied (\d+) job")
        return sum(int(n) for w in self.logs for n in pattern.findall(w.log_path.read_bytes()))


def _one_warehouse_per_shard(client: httpx.Client, shards: int) -> list[str]:
    """Warehouses whose slots fall on every one of `shards` queues, so every queue carries load."""
    found: dict[int, str] = {}
    while len(found) < shards:
        code = unique("RS")
        found.setdefault(shard_for_slot(slot_for(code), shards), code)
    return [found[n] for n in range(shards)]


def _waiting_messages(kind: str, queues: list[str]) -> list[int]:
    if kind == "rabbitmq":
        return rabbitmq_lengths(RABBITMQ_URL, queues)
    return redis_lengths(get_settings().redis_url, queues)


@pytest.fixture
def fleet(broker) -> Iterator[tuple[str, Fleet]]:
    kind, broker_settings, created_queues = broker
    prefix = f"reshard{uuid.uuid4().hex[:8]}"
    fleet = Fleet(prefix, {"QUEUE_PREFIX": prefix, **SWEEP, **broker_settings})
    created_queues.extend(fleet.queues(MANY))
    try:
        fleet.start(FEW)
        yield kind, fleet
    finally:
        fleet.stop()


def test_shard_count_changes_under_load_with_nothing_lost_doubled_or_reordered(fleet, auth, db):
    kind, fleet = fleet
    engine = create_engine(get_settings().database_url)
    with httpx.Client(base_url=fleet.urls()[0], headers=auth, timeout=30) as c:
        warehouses, skus = _one_warehouse_per_shard(c, MANY), [unique("RSS"), unique("RSS")]
        create_catalog(c, warehouses, skus)
    # Two clients per warehouse, one per SKU: each is ordered against itself, and the two contend
    # for the warehouse's ordering slot.
    clients = [SequentialClient(fleet.urls, auth, w, sku, pause=CLIENT_PAUSE, first=n)
               for n, (w, sku) in enumerate(itertools.product(warehouses, skus))]
    try:
        time.sleep(STEP_SECONDS)
        fleet.roll(MANY)
        fleet.roll(FEW)
        time.sleep(STEP_SECONDS)
    finally:
        sent = [client.stop() for client in clients]
    settled = wait_until_finished(engine, [j for s in sent for j in s.job_ids], timeout=60)
    left_over = _waiting_messages(kind, fleet.queues(MANY))
    engine.dispose()

    accepted = sum(len(s.job_ids) for s in sent)
    print(f"{kind}: {accepted} commands accepted from {len(sent)} clients over 2 -> 8 -> 2 shards "
          f"({sum(s.retries for s in sent)} retries), all finished {settled:.1f} s after the load; "
          f"{fleet.swept()} applied by the sweep; wake-ups left in the queues: {left_over}")
    assert all(len(s.job_ids) > 20 for s in sent), "a client hardly got anything accepted"
    # The case this test is for: wake-ups went where, after the way down, no worker listens.
    assert sum(left_over[FEW:]) > 0, left_over
    problems = broken_promises(db, sent)
    assert not problems, "\n".join(problems)
