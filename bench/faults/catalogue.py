"""The faults, in the order the campaign injects them. Each `inject` returns when the fault is
over: the killed process restarted, the server back on its port and data directory, the signal
lifted, the burst answered. Recovery is measured from then.

A process killed here is started again by the campaign after a short pause, the way a supervisor
would (bin/run does not do it yet: issue 16, item 3).

The broker's faults depend on the broker (`--broker`): on Redis a restart with its append-only file,
one with nothing kept, and a kill -9; on RabbitMQ a restart and a kill -9 (its quorum queues are on
disk either way). With RabbitMQ as the broker, Redis keeps only the status copies and the rate
limit."""

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.faults.rig import Rig

Inject = Callable[["Rig"], Awaitable[None]]


@dataclass(frozen=True)
class Fault:
    name: str
    what: str
    inject: Inject
    # Settings of an extra API the fault's burst is sent to (its own high-water mark or rate).
    api_settings: dict[str, str] = field(default_factory=dict)
    broker: str | None = None  # the broker whose fault it is; None: a fault on either broker


async def _restart_process(rig: "Rig", name: str) -> None:
    await asyncio.to_thread(rig.stack.kill, name)
    await asyncio.sleep(rig.timing.restart_delay)
    await asyncio.to_thread(rig.stack.restart, name)


async def kill_worker(rig: "Rig") -> None:
    await _restart_process(rig, rig.stack.workers[0])


async def kill_api(rig: "Rig") -> None:
    await _restart_process(rig, "api")


async def _down_then_up(stop: Callable[[], None], start: Callable[[], None], seconds: float) -> None:
    await asyncio.to_thread(stop)
    await asyncio.sleep(seconds)
    await asyncio.to_thread(start)


async def redis_restart_aof(rig: "Rig") -> None:
    await _down_then_up(lambda: rig.redis.shutdown(save=True), rig.redis.start, rig.timing.down)


async def redis_restart_empty(rig: "Rig") -> None:
    def stop() -> None:
        rig.redis.shutdown(save=False)
        rig.redis.forget_everything()

    await _down_then_up(stop, rig.redis.start, rig.timing.down)


async def redis_crash(rig: "Rig") -> None:
    await _down_then_up(rig.redis.kill, rig.redis.start, rig.timing.down)


async def rabbitmq_restart(rig: "Rig") -> None:
    assert rig.rabbitmq is not None
    await _down_then_up(rig.rabbitmq.stop, rig.rabbitmq.start, rig.timing.down)


async def rabbitmq_crash(rig: "Rig") -> None:
    assert rig.rabbitmq is not None
    await _down_then_up(rig.rabbitmq.crash, rig.rabbitmq.start, rig.timing.down)


async def mariadb_stop(rig: "Rig") -> None:
    await _down_then_up(rig.mariadb.stop, rig.mariadb.start, rig.timing.down)


async def mariadb_crash(rig: "Rig") -> None:
    await _down_then_up(rig.mariadb.kill, rig.mariadb.start, rig.timing.down)


async def pause_worker(rig: "Rig") -> None:
    worker = rig.stack.workers[-1]
    rig.stack.signal(worker, signal.SIGSTOP)
    try:
        await asyncio.sleep(rig.timing.sigstop)
    finally:
        rig.stack.signal(worker, signal.SIGCONT)


async def burst(rig: "Rig") -> None:
    assert rig.extra_url is not None
    await rig.burst_clients.burst(rig.extra_url, rig.timing.burst)


FAULTS = [
    Fault("worker kill -9", "SIGKILL the first worker mid-load, start it again", kill_worker),
    Fault("api kill -9", "SIGKILL the API (every uvicorn process), start it again", kill_api),
    Fault("redis restart aof", "SHUTDOWN Redis (append-only file flushed), start it on the same files",
          redis_restart_aof, broker="redis"),
    Fault("redis restart empty", "SHUTDOWN NOSAVE, delete its files, start it: every message lost, "
          "as a Redis without persistence", redis_restart_empty, broker="redis"),
    Fault("redis kill -9", "SIGKILL Redis (appendfsync everysec), start it on the same files", redis_crash,
          broker="redis"),
    Fault("rabbitmq restart", "stop the RabbitMQ node cleanly (rabbitmqctl stop), start it on the same "
          "data", rabbitmq_restart, broker="rabbitmq"),
    Fault("rabbitmq kill -9", "SIGKILL RabbitMQ's Erlang VM, start it on the same data", rabbitmq_crash,
          broker="rabbitmq"),
    Fault("mariadb stop", "clean shutdown of MariaDB, start it on the same data directory", mariadb_stop),
    Fault("mariadb kill -9", "SIGKILL MariaDB, start it (InnoDB crash recovery)", mariadb_crash),
    Fault("worker sigstop", "SIGSTOP the last worker, SIGCONT it later", pause_worker),
    Fault("high-water burst", "a burst of commands at an API whose MAX_QUEUED_JOBS is low", burst,
          {"MAX_QUEUED_JOBS": "25", "OVERLOAD_RETRY_AFTER_SECONDS": "1"}),
    Fault("rate-limit burst", "a burst of commands at an API whose RATE_LIMIT_PER_SECOND is low", burst,
          {"RATE_LIMIT_PER_SECOND": "20", "RATE_LIMIT_BURST": "20"}),
]


BROKERS = ("redis", "rabbitmq")


def faults_for(broker: str) -> list[Fault]:
    """The campaign's faults with this broker, in order."""
    return [f for f in FAULTS if f.broker in (None, broker)]
