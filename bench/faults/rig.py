"""The campaign's world: its own MariaDB and Redis (and RabbitMQ, when it is the broker), the schema,
a catalog with opening stock, API keys, and the service's real processes, all torn down at the end
(the servers' logs are kept)."""

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from sqlalchemy import Engine, create_engine

from bench.faults.servers import MariaDB, RabbitMQ, Redis
from bench.faults.traffic import Clients
from bench.stack import (
    ROOT,
    Stack,
    bench_key,
    free_port,
    one_worker_per_queue,
    shard_queues,
    workers_on_every_queue,
)
from shared.ordering import shard_for_slot, slot_for

OUT = ROOT / "var" / "faults"
QUEUE_PREFIX = "faults"


@dataclass(frozen=True)
class Timing:
    warmup: float  # load before the fault
    after: float  # load after the fault is over
    down: float  # how long a server stays down
    restart_delay: float  # from a process killed to its restart, as a supervisor would
    sigstop: float
    burst: int  # commands in a burst
    bound: float  # recovery bound: a job not terminal this long after the fault is stuck
    give_up: float  # a client stops retrying one request after this long
    clients: int
    pause: float  # most a client waits between actions


FULL = Timing(warmup=5, after=10, down=5, restart_delay=2, sigstop=30, burst=400, bound=120,
              give_up=90, clients=4, pause=0.06)
SHORT = Timing(warmup=2, after=3, down=2, restart_delay=1, sigstop=5, burst=150, bound=60,
               give_up=60, clients=4, pause=0.06)


@dataclass
class Rig:
    mariadb: MariaDB
    redis: Redis
    stack: Stack
    engine: Engine
    authorization: str
    burst_authorization: str  # its own key, so the burst's rate bucket is its own
    catalog: tuple[list[str], list[str]]
    shards: int
    timing: Timing
    rabbitmq: RabbitMQ | None = None  # the broker, if not Redis
    http: aiohttp.ClientSession | None = None
    extra_url: str | None = None
    burst_clients: Clients = field(init=False)


def service_env(mariadb: MariaDB, redis: Redis, shards: int, sweep_seconds: float,
                rabbitmq: RabbitMQ | None = None) -> dict[str, str]:
    """Every setting that points a process somewhere is set, so the caller's environment (a test
    run's DATABASE_URL, say) never leaks into the campaign."""
    return {
        "PROFILE": "server",
        "DATABASE_URL": mariadb.url("stock_faults"),
        "REDIS_URL": redis.url(0),
        "BROKER_URL": rabbitmq.url if rabbitmq else redis.url(0),
        "QUEUE_PREFIX": QUEUE_PREFIX,
        "SHARD_COUNT": str(shards),
        "API_KEY_PEPPER": secrets.token_urlsafe(24),
        "SWEEP_INTERVAL_SECONDS": str(sweep_seconds),
        "LOG_LEVEL": "INFO",
    }


def seed_catalog(url: str, shards: int) -> tuple[list[str], list[str]]:
    """Warehouses on every shard and a few dozen SKUs, each level with opening stock that issues
    can run out of (business failures are part of the mix)."""
    from bench.load import catalog, seed

    warehouses, skus = 6, 20
    codes, names = catalog(warehouses, skus)
    if {shard_for_slot(slot_for(c), shards) for c in codes} != set(range(shards)):
        raise ValueError(f"with {shards} shards some shard has none of the warehouses {codes}")
    seed(url, warehouses, skus, stock=30)
    return codes, names


@contextmanager
def open_rig(timing: Timing, shards: int, layout: str, api_workers: int | None,
             sweep_seconds: float, logs: Path, broker: str = "redis") -> Iterator[Rig]:
    # A wrong layout is refused before any server starts.
    workers = worker_layout(layout, shard_queues({"QUEUE_PREFIX": QUEUE_PREFIX, "SHARD_COUNT": str(shards)}))
    base = Path(tempfile.mkdtemp(prefix="stock-faults-"))
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    mariadb, redis, stack = MariaDB(base, free_port()), Redis(base, free_port()), None
    rabbitmq = RabbitMQ(base / "rabbitmq", free_port(), free_port(), logs) if broker == "rabbitmq" else None
    try:
        mariadb.start()
        redis.start()
        if rabbitmq is not None:
            rabbitmq.start()
        env = service_env(mariadb, redis, shards, sweep_seconds, rabbitmq)
        os.environ.update(env)  # for this process's own use of the settings (key hashing)
        from cli.prestart import create_database_if_missing, upgrade

        create_database_if_missing(env["DATABASE_URL"])
        upgrade(env["DATABASE_URL"])
        catalog = seed_catalog(env["DATABASE_URL"], shards)
        keys = [bench_key(env["DATABASE_URL"])["Authorization"] for _ in range(2)]
        stack = Stack(env, port=free_port(), api_workers=api_workers, logs=logs, worker_log_level="INFO",
                      layout=workers)
        engine = create_engine(env["DATABASE_URL"], pool_pre_ping=True, isolation_level="READ COMMITTED")
        yield Rig(mariadb, redis, stack, engine, keys[0], keys[1], catalog, shards, timing, rabbitmq)
    finally:
        if stack is not None:
            stack.stop()
        if rabbitmq is not None:
            rabbitmq.close()  # a kill -9: the node and its data are thrown away
        redis.stop()
        mariadb.stop()
        for name in ("mariadb.log", "redis.log"):
            if (base / name).exists():
                shutil.copy(base / name, logs / name)
        shutil.rmtree(base, ignore_errors=True)


def worker_layout(spec: str, queues: list[str]) -> list[list[str]]:
    """`every-queue:N` (N workers, each consuming every shard queue, as bin/run) or `per-shard`
    (one worker per shard queue)."""
    if spec == "per-shard":
        return one_worker_per_queue(queues)
    kind, _, count = spec.partition(":")
    if kind == "every-queue" and count.isdigit() and int(count) > 0:
        return workers_on_every_queue(queues, int(count))
    raise ValueError(f"unknown worker layout {spec!r}: per-shard or every-queue:N")
