"""Start the real API and worker processes the way the run command does, for end-to-end tests."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import httpx

from shared.celery_app import all_queues

ROOT = Path(__file__).resolve().parents[2]
LOGS = ROOT / "var" / "test-logs"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    """A child process with its log in var/test-logs, stopped on request or at exit."""

    def __init__(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = LOGS / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115
        self.popen = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})},
                                      stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        self.metrics_url: str | None = None
        self._cleanups: list[Callable[[], object]] = []

    def on_stop(self, cleanup: Callable[[], object]) -> None:
        self._cleanups.append(cleanup)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, sig)
                self.popen.wait(timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._log.close()
        for cleanup in self._cleanups:
            cleanup()
        self._cleanups.clear()

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown, no acks."""
        self.stop(signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_api(env: dict[str, str] | None = None, workers: int = 2, host: str = "127.0.0.1",
              run_in: Sequence[str] = ()) -> tuple[Process, str]:
    """The API on HOST; `run_in` prefixes its command (`ip netns exec NS` puts it on another host)."""
    port = free_port()
    # As bin/run does: an empty directory where the API's processes add up their metrics.
    metrics_dir = tempfile.mkdtemp(prefix="stock-api-metrics-")
    # As bin/run: api/server.py, uvicorn with the header and connection limits.
    api = Process(f"api-{port}", [*run_in, sys.executable, "-m", "api.server",
                                  "--host", host, "--port", str(port),
                                  "--workers", str(workers), "--no-access-log"],
                  {"PROMETHEUS_MULTIPROC_DIR": metrics_dir, **(env or {})})
    api.on_stop(lambda: shutil.rmtree(metrics_dir, ignore_errors=True))
    base = f"http://{host}:{port}"
    api.metrics_url = f"{base}/metrics"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if api.popen.poll() is not None:
            raise RuntimeError(f"API exited:\n{api.tail()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return api, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    api.stop()
    raise RuntimeError(f"API did not become ready:\n{api.tail()}")


def start_worker(name: str, queues: Iterable[str] | None = None,
                 env: dict[str, str] | None = None, concurrency: int = 1,
                 pool: str = "solo", host: str = "127.0.0.1", run_in: Sequence[str] = ()) -> Process:
    """A worker; `run_in` prefixes its command (`ip netns exec NS` puts it on another host, whose
    address HOST its metrics are served on)."""
    queues = queues or all_queues()
    # Its own metrics port: tests run several workers on the same shards, which bin/run never does.
    metrics_port = free_port()
    worker = Process(f"worker-{name}", [
        *run_in, sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-Q", ",".join(queues),
        "--pool", pool, "--concurrency", str(concurrency), "-n", f"{name}@%h", "--without-gossip",
        "--without-mingle", "--loglevel", "INFO"],
        {"WORKER_METRICS_PORT": str(metrics_port), "WORKER_METRICS_HOST": host, **(env or {})})
    worker.metrics_url = f"http://{host}:{metrics_port}/metrics"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if worker.popen.poll() is not None:
            raise RuntimeError(f"worker exited:\n{worker.tail()}")
        if b"ready." in worker.log_path.read_bytes():
            return worker
        time.sleep(0.2)
    worker.stop()
    raise RuntimeError(f"worker did not become ready:\n{worker.tail()}")
