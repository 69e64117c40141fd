"""Start a fresh database and the real API and workers for a benchmark run."""

import os
import subprocess
import sys
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
    """Authorization headers of a fresh read+write key in the database at `url`."""
    from sqlalchemy.orm import Session

    from shared.api_keys import create_key

    with Session(create_engine(url)) as session:
        key = create_key(session, name="bench", scopes=frozenset({"read", "write"}))
        session.commit()
    return {"Authorization": f"Bearer {key}"}


class Stack:
    """The API (uvicorn) and the workers, each consuming every shard queue, as the run command
    starts them."""

    def __init__(self, env: dict[str, str], port: int = 8765,
                 api_workers: int = min(4, max(1, len(os.sched_getaffinity(0)) // 2)),  # as bin/run
                 worker_processes: int = 2) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **env}
        self.url = f"http://127.0.0.1:{port}"
        self.procs: list[subprocess.Popen] = []
        self._spawn("api", [sys.executable, "-m", "uvicorn", "api.main:app", "--port", str(port),
                            "--workers", str(api_workers), "--loop", "uvloop", "--http", "httptools",
                            "--no-access-log", "--log-level", "warning"])
        queues = ",".join(f"{env['QUEUE_PREFIX']}.{shard}" for shard in range(int(env["SHARD_COUNT"])))
        for n in range(worker_processes):
            self._spawn(f"worker-{n}", [
                sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-Q", queues,
                "--pool", "solo", "-n", f"{env['QUEUE_PREFIX']}-{n}@%h", "--without-gossip",
                "--without-mingle", "--loglevel", "WARNING"], {"WORKER_METRICS_PORT": "0"})
        self._wait_ready()

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = open(LOGS / f"{name}.log", "wb")  # noqa: SIM115
        self.procs.append(subprocess.Popen(args, cwd=ROOT, env={**self.env, **(env or {})}, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True))

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    time.sleep(2)  # let the workers connect to the broker
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"stack did not start; see {LOGS}")

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
