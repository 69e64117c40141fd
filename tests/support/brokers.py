"""The two brokers the tests run on: Redis and RabbitMQ. The machine's own servers for tests that
only need one (with queue names of their own), and servers of a test's own, on their own ports,
for tests that stop, restart or crash them."""

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from kombu import Connection, Queue

from bench.faults.servers import RabbitMQ
from tests.support.processes import LOGS, free_port

BROKERS = ("redis", "rabbitmq")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def broker_env(kind: str, url: str | None = None) -> dict[str, str]:
    """The settings that put the API and the workers on this broker (Redis: REDIS_URL's own)."""
    if kind == "rabbitmq":
        return {"BROKER_URL": url or RABBITMQ_URL}
    return {"BROKER_URL": url} if url else {}


def delete_queues(kind: str, names: list[str], url: str | None = None) -> None:
    """Remove a test's queues (RabbitMQ keeps quorum queues until deleted)."""
    if kind != "rabbitmq":
        return
    with Connection(url or RABBITMQ_URL, connect_timeout=5) as connection:
        for name in names:
            with contextlib.suppress(Exception):
                Queue(name, channel=connection.channel()).delete()


class OwnRabbitMQ(RabbitMQ):
    """A RabbitMQ node of the test's own (the campaign's, bench/faults/servers.py), logging to
    var/test-logs; on HOST behind `run_in` for the multi-host test."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", run_in: Sequence[str] = ()) -> None:
        super().__init__(data_dir, free_port(), free_port(), LOGS, host=host, run_in=run_in)


class OwnRedis:
    """A Redis of the test's own, with or without append-only persistence."""

    def __init__(self, data_dir: Path, persistent: bool, host: str = "127.0.0.1",
                 run_in: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.host = host
        self.run_in = list(run_in)
        self.data_dir = data_dir
        self.persistent = persistent
        self.process: subprocess.Popen | None = None
        LOGS.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        persistence = ["yes", "--appendfsync", "everysec"] if self.persistent else ["no"]
        # Without a password Redis refuses clients from other hosts, unless told not to.
        protected = "yes" if self.host.startswith("127.") else "no"
        self.process = subprocess.Popen([
            *self.run_in, "redis-server", "--bind", self.host, "--port", str(self.port),
            "--dir", str(self.data_dir), "--save", "", "--maxmemory-policy", "noeviction",
            "--protected-mode", protected,
            "--appendonly", *persistence, "--logfile", str(LOGS / f"redis-{self.port}.log")])
        client = redis.Redis(host=self.host, port=self.port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("the test's Redis did not start")

    def stop(self) -> None:
        redis.Redis(host=self.host, port=self.port).shutdown(nosave=not self.persistent)
        assert self.process is not None
        self.process.wait(10)

    def crash(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
