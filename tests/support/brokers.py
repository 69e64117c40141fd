"""The two brokers the tests run on: Redis and RabbitMQ. The machine's own servers for tests that
only need one (with queue names of their own), and servers of a test's own, on their own ports,
for tests that stop, restart or crash them."""

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis
from kombu import Connection, Queue

from tests.support.processes import LOGS, free_port

BROKERS = ("redis", "rabbitmq")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


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


class OwnRabbitMQ:
    """A RabbitMQ node of the test's own: its own name, ports and data folder, no plugins."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1") -> None:
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("rabbitmq-server is not installed (.ci/run installs it)")
        self.port = free_port()
        self.dist_port = free_port()
        self.host = host
        self.data_dir = data_dir
        self.node = f"rtest{self.port}@localhost"
        (data_dir / "enabled_plugins").write_text("[].\n")
        LOGS.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}//"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_NODE_IP_ADDRESS": self.host, "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.data_dir / "mnesia"),
                "RABBITMQ_LOG_BASE": str(LOGS / f"rabbitmq-{self.port}"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.data_dir / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(self.data_dir / "none"),  # the machine's sets its port
                "RABBITMQ_PID_FILE": str(self.data_dir / "pid")}

    def _ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args], env=self._env(),
                              capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        subprocess.run([str(RABBITMQ_BIN / "rabbitmq-server"), "-detached"], env=self._env(), check=True)
        waited = self._ctl("wait", str(self.data_dir / "pid"), "--timeout", "60", timeout=90)
        if waited.returncode != 0:
            raise RuntimeError(f"the test's RabbitMQ did not start: {waited.stdout}{waited.stderr}")

    def stop(self) -> None:
        """A clean shutdown: the node stops and writes its queues down."""
        self._ctl("stop", str(self.data_dir / "pid"))

    def crash(self) -> None:
        """kill -9 of the Erlang VM."""
        pid = int((self.data_dir / "pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.crash()


class OwnRedis:
    """A Redis of the test's own, with or without append-only persistence."""

    def __init__(self, data_dir: Path, persistent: bool, host: str = "127.0.0.1") -> None:
        self.port = free_port()
        self.host = host
        self.data_dir = data_dir
        self.persistent = persistent
        self.process: subprocess.Popen | None = None
        LOGS.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        persistence = ["yes", "--appendfsync", "everysec"] if self.persistent else ["no"]
        self.process = subprocess.Popen([
            "redis-server", "--bind", self.host, "--port", str(self.port), "--dir", str(self.data_dir),
            "--save", "", "--maxmemory-policy", "noeviction", "--appendonly", *persistence,
            "--logfile", str(LOGS / f"redis-{self.port}.log")])
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
