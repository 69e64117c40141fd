"""Start a fresh database and the real API and workers, as the run command does, for the benchmarks
and the fault campaign (bench/faults). Every process of the service is started here, so a change of
worker layout (which queues each worker consumes, and how many workers) is made in one place."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "var" / "bench-logs"


def bench_env(name: str, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL",
                                       f"mysql+pymysql://root:@127.0.0.1:3306/stock_bench_{name}"),
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
        "QUEUE_PREFIX": f"bench-{name}",
        "SHARD_COUNT": "2",
        "API_KEY_PEPPER": os.environ.get("API_KEY_PEPPER", "bench-only-pepper"),
        **extra,
    }
    os.environ.update(env)
    return env


def fresh_database(url: str) -> None:
    from cli.prestart import create_database_if_missing, upgrade

    parsed = make_url(url)
    with create_engine(parsed.set(database=""), isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{parsed.database}`"))
    create_database_if_missing(url)
    upgrade(url)


def bench_key(url: str) -> dict[str, str]:
    """Authorization headers of a fresh key in the database at `url` that may write stock, the
    catalog and webhooks (the benchmarks and the multi-host test make their own)."""
    from sqlalchemy.orm import Session

    from shared.api_keys import create_key

    with Session(create_engine(url)) as session:
        key = create_key(session, name="bench", scopes=frozenset({"read", "write", "catalog", "webhooks"}))
        session.commit()
    return {"Authorization": f"Bearer {key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shard_queues(env: dict[str, str]) -> list[str]:
    """The shard queue names, spelled as shared.celery_app.all_queues() spells them for this env."""
    return [f"{env['QUEUE_PREFIX']}.{shard}" for shard in range(int(env["SHARD_COUNT"]))]


def one_worker_per_queue(queues: list[str]) -> list[list[str]]:
    """Each shard queue with a consumer of its own (a layout to compare with)."""
    return [[queue] for queue in queues]


def workers_on_every_queue(queues: list[str], count: int = 2) -> list[list[str]]:
    """COUNT workers, each consuming every shard queue: bin/run's layout (WORKER_PROCESSES=2)."""
    return [list(queues) for _ in range(count)]


def default_api_workers() -> int:
    """As bin/run: one API process per two cores, from one to four."""
    return min(4, max(1, len(os.sched_getaffinity(0)) // 2))


class Stack:
    """The API (uvicorn) and the workers, as the run command starts them. `layout` lists each
    worker's queues (default: two workers, each on every shard queue). Processes are named ("api",
    "worker-0", ...) so a caller can kill, stop or restart one of them; a restart reuses its port."""

    def __init__(self, env: dict[str, str], port: int = 8765, api_workers: int | None = None,
                 layout: list[list[str]] | None = None, logs: Path = LOGS,
                 worker_log_level: str = "WARNING", webhooks: bool = False) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **env}
        self.logs = logs
        self.url = f"http://127.0.0.1:{port}"
        self.worker_log_level = worker_log_level
        self.api_workers = api_workers or default_api_workers()
        self.layout = layout or workers_on_every_queue(shard_queues(env))
        self.procs: dict[str, subprocess.Popen] = {}
        self._commands: dict[str, tuple[list[str], dict[str, str], str | None]] = {}
        self._metrics_dirs: list[str] = []
        try:
            self.start_api("api", port)
            for n, queues in enumerate(self.layout):
                self.start_worker(f"worker-{n}", queues)
            if webhooks:  # as bin/run: deliveries on a worker of their own, with threads
                self.start_worker("webhooks", [f"{env['QUEUE_PREFIX']}.webhooks"], pool="threads",
                                  concurrency=8)
        except Exception:
            self.stop()
            raise

    @property
    def workers(self) -> list[str]:
        return [name for name in self.procs if name.startswith("worker-")]

    def start_api(self, name: str, port: int, **settings: str) -> str:
        """An API on PORT with these settings over the stack's; returns its URL once it is ready."""
        # As bin/run: an empty directory where the API's processes add up their metrics.
        metrics_dir = tempfile.mkdtemp(prefix=f"stock-{name}-metrics-")
        self._metrics_dirs.append(metrics_dir)
        self._spawn(name, [sys.executable, "-m", "api.server", "--host", "127.0.0.1",
                           "--port", str(port), "--workers", str(self.api_workers),
                           "--no-access-log", "--log-level", "warning"],
                    {"PROMETHEUS_MULTIPROC_DIR": metrics_dir, **settings},
                    f"http://127.0.0.1:{port}/readyz")
        return f"http://127.0.0.1:{port}"

    def start_worker(self, name: str, queues: list[str], pool: str = "solo", concurrency: int = 1) -> None:
        # Its own metrics port: two workers on one machine must not collide. It answers once the
        # worker is ready.
        port = free_port()
        self._spawn(name, [sys.executable, "-m", "celery", "-A", "worker.app", "worker",
                           "-Q", ",".join(queues), "--pool", pool, "--concurrency", str(concurrency),
                           "-n", f"{name}-{queues[0]}@%h", "--without-gossip", "--without-mingle",
                           "--loglevel", self.worker_log_level],
                    {"WORKER_METRICS_PORT": str(port)}, f"http://127.0.0.1:{port}/metrics")

    def _spawn(self, name: str, args: list[str], settings: dict[str, str], ready_url: str | None) -> None:
        self._commands[name] = (args, settings, ready_url)
        if settings.get("PROMETHEUS_MULTIPROC_DIR"):  # must be empty at each start
            shutil.rmtree(settings["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
            os.makedirs(settings["PROMETHEUS_MULTIPROC_DIR"])
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115
        self.procs[name] = subprocess.Popen(args, cwd=ROOT, env={**self.env, **settings}, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        if ready_url:
            self._wait_ready(name, ready_url)

    def _wait_ready(self, name: str, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.logs / (name + '.log')}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{name} did not become ready; see {self.logs / (name + '.log')}")

    def signal(self, name: str, sig: int) -> None:
        """Send SIG to the process's whole group (uvicorn's children with it)."""
        os.killpg(self.procs[name].pid, sig)

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown, no acks."""
        self.signal(name, signal.SIGKILL)
        self.procs[name].wait(10)

    def restart(self, name: str) -> None:
        """Start the named process again with its command and settings, once it has ended."""
        if self.procs[name].poll() is None:
            self.stop_one(name)
        args, settings, ready_url = self._commands[name]
        self._spawn(name, args, settings, ready_url)

    def stop_one(self, name: str, timeout: float = 20) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGCONT)  # a stopped process cannot act on TERM
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            except ProcessLookupError:
                pass

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values()]

    def stop(self) -> None:
        for name in list(self.procs):
            self.stop_one(name)
        for path in self._metrics_dirs:
            shutil.rmtree(path, ignore_errors=True)
