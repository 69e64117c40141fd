"""The campaign's own MariaDB and Redis: fresh data directories in a temporary folder, ports of
their own, and the ways to stop them that the faults need. A restart comes back on the same port
and the same data directory, as a real server would after a crash or a maintenance stop. The
machine's shared servers are never touched."""

import os
import shutil
import signal
import subprocess
import time
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
    """mariadbd on 127.0.0.1:PORT, root with an empty password, durable commits (the defaults)."""

    def __init__(self, base: Path, port: int) -> None:
        self.base = base
        self.port = port
        self.datadir = base / "mariadb"
        self.proc: subprocess.Popen | None = None
        subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                        "--auth-root-authentication-method=normal", "--skip-test-db", *_as_root()],
                       check=True, capture_output=True)

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root:@127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60) -> None:
        log = open(self.base / "mariadb.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [MARIADBD, "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
             f"--socket={self.base / 'mariadb.sock'}", "--bind-address=127.0.0.1",
             f"--pid-file={self.base / 'mariadb.pid'}", "--skip-name-resolve", "--max-connections=500",
             *_as_root()], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mariadbd exited; see {self.base / 'mariadb.log'}")
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root", connect_timeout=1).close()
                return
            except pymysql.MySQLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

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
