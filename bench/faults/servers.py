"""The campaign's own MariaDB, Redis and RabbitMQ: fresh data directories in a temporary folder,
ports of their own, and the ways to stop them that the faults need. A restart comes back on the same
port and the same data directory, as a real server would after a crash or a maintenance stop. The
machine's shared servers are never touched.

MariaDB and RabbitMQ can also run on another address and behind a command prefix (`run_in`, such as
`ip netns exec HOST`): the multi-host test puts them on a host of their own
(tests/support/hosts.py)."""

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pymysql
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# Debian puts the server in /usr/sbin, which is not on every user's PATH.
MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"


def _as_root() -> list[str]:
    """mariadbd refuses to run as root unless told to; as anyone else the option is not needed."""
    return ["--user=root"] if os.geteuid() == 0 else []


def _end(proc: subprocess.Popen | None, sig: int, timeout: float) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class MariaDB:
    """mariadbd on HOST:PORT (127.0.0.1 unless told), root with an empty password, durable commits
    (the defaults)."""

    def __init__(self, base: Path, port: int, host: str = "127.0.0.1", run_in: Sequence[str] = ()) -> None:
        self.base = base
        self.port = port
        self.host = host
        self.run_in = list(run_in)
        self.datadir = base / "mariadb"
        self.socket = base / "mariadb.sock"
        self.proc: subprocess.Popen | None = None
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                        "--auth-root-authentication-method=normal", "--skip-test-db", *_as_root()],
                       check=True, capture_output=True)

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root:@{self.host}:{self.port}/{database}"

    def start(self, timeout: float = 60) -> None:
        log = open(self.base / "mariadb.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [*self.run_in, MARIADBD, "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
             f"--socket={self.socket}", f"--bind-address={self.host}",
             f"--pid-file={self.base / 'mariadb.pid'}", "--skip-name-resolve", "--max-connections=500",
             *_as_root()], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited; see {self.base / 'mariadb.log'}")
            try:
                self._admin().close()
                return
            except pymysql.MySQLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _admin(self) -> pymysql.Connection:
        """root over the server's socket, which answers from any network namespace."""
        return pymysql.connect(unix_socket=str(self.socket), user="root", connect_timeout=1)

    def allow_root_from_anywhere(self) -> None:
        """root from other hosts too (mariadb-install-db makes root@localhost only)."""
        with self._admin() as conn, conn.cursor() as cursor:
            cursor.execute("CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY ''")
            cursor.execute("GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION")

    def stop(self) -> None:
        """A clean shutdown: InnoDB flushes and closes."""
        _end(self.proc, signal.SIGTERM, 120)

    def kill(self) -> None:
        """SIGKILL: the next start runs crash recovery from the redo log."""
        _end(self.proc, signal.SIGKILL, 10)


class Redis:
    """redis-server on 127.0.0.1:PORT with the production settings of docker-compose.yml:
    append-only persistence (fsync every second), no snapshots, no eviction."""

    def __init__(self, base: Path, port: int) -> None:
        self.base = base
        self.port = port
        self.dir = base / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 30) -> None:
        log = open(self.base / "redis.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.dir),
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
             "--maxmemory-policy", "noeviction"], stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        client = self._client()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.base / 'redis.log'}")
            try:
                # Loading a large append-only file answers LOADING until it is done.
                if client.ping():
                    return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def shutdown(self, save: bool = True) -> None:
        """SHUTDOWN: with `save`, the append-only file is flushed first; without, whatever the
        last second of appends held may be gone."""
        try:
            self._client().shutdown(nosave=not save)
        except redis.ConnectionError:
            pass  # the server closes the connection as it goes
        if self.proc is not None:
            self.proc.wait(30)

    def _client(self) -> redis.Redis:
        # No retries: redis-py's own would spend seconds reconnecting to a server that is gone.
        return redis.Redis(port=self.port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))

    def forget_everything(self) -> None:
        """What a Redis without persistence has after a restart: nothing. Only while stopped."""
        shutil.rmtree(self.dir)
        self.dir.mkdir()

    def kill(self) -> None:
        _end(self.proc, signal.SIGKILL, 10)

    def stop(self) -> None:
        _end(self.proc, signal.SIGTERM, 30)


RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


class RabbitMQ:
    """A RabbitMQ node of its own: its own name, ports and data folder, no plugins; on HOST
    (127.0.0.1 unless told), its commands run behind `run_in`."""

    def __init__(self, data_dir: Path, port: int, dist_port: int, logs: Path, host: str = "127.0.0.1",
                 run_in: Sequence[str] = ()) -> None:
        if shutil.which("rabbitmq-server") is None:
            raise RuntimeError("rabbitmq-server is not installed (.ci/run installs it)")
        self.port = port
        self.dist_port = dist_port
        self.host = host
        self.run_in = list(run_in)
        self.data_dir = data_dir
        self.logs = logs
        self.node = f"rtest{self.port}@localhost"
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "enabled_plugins").write_text("[].\n")
        logs.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}//"

    def _env(self) -> dict[str, str]:
        return {**os.environ, "RABBITMQ_NODENAME": self.node, "RABBITMQ_NODE_PORT": str(self.port),
                "RABBITMQ_NODE_IP_ADDRESS": self.host, "RABBITMQ_DIST_PORT": str(self.dist_port),
                "RABBITMQ_MNESIA_BASE": str(self.data_dir / "mnesia"),
                "RABBITMQ_LOG_BASE": str(self.logs / f"rabbitmq-{self.port}"),
                "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.data_dir / "enabled_plugins"),
                "RABBITMQ_CONFIG_FILE": str(self._config()),  # not the machine's: it sets its port
                "RABBITMQ_PID_FILE": str(self.data_dir / "pid")}

    def _config(self) -> Path:
        """guest may log in only over the loopback by default: on a host of its own, from anywhere."""
        path = self.data_dir / "rabbitmq.conf"
        if not path.exists():
            path.write_text("" if self.host.startswith("127.") else "loopback_users = none\n")
        return path

    def _ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([*self.run_in, str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.node, *args],
                              env=self._env(), capture_output=True, text=True, timeout=timeout)

    def start(self) -> None:
        subprocess.run([*self.run_in, str(RABBITMQ_BIN / "rabbitmq-server"), "-detached"], env=self._env(),
                       check=True)
        waited = self._ctl("wait", str(self.data_dir / "pid"), "--timeout", "60", timeout=90)
        if waited.returncode != 0:
            raise RuntimeError(f"RabbitMQ did not start: {waited.stdout}{waited.stderr}")

    def stop(self) -> None:
        """A clean shutdown: the node stops and writes its queues down."""
        self._ctl("stop", str(self.data_dir / "pid"))

    def crash(self) -> None:
        """kill -9 of the Erlang VM."""
        try:
            pid = int((self.data_dir / "pid").read_text().strip())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            return  # not running
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def close(self) -> None:
        """Gone, whatever state it is in."""
        with contextlib.suppress(Exception):
            self.crash()
