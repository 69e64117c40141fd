"""The run command keeps the service up: bin/run itself, with its supervisor and real processes.

A process killed outright comes back by itself and commands keep completing, while the others go on
serving; TERM or Ctrl-C stops every process, and bin/run exits only after them. bin/run runs in a
session of its own, so the session id finds every process it started, wherever they moved their
process groups.
"""

import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import ROOT, Process, free_port

WORKERS = 2  # bin/run's default WORKER_PROCESSES
BACK_WITHIN_SECONDS = 15


@dataclass(frozen=True)
class Member:
    pid: int
    parent: int
    group: int
    command: str


def session_members(session: int) -> list[Member]:
    """Every process of the session, zombies included: one that bin/run's supervisor did not wait
    for would show here as a zombie."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        # After "pid (name) ": state, parent, process group, session.
        _state, parent, group, sid = stat[stat.rindex(")") + 2:].split()[:4]
        if int(sid) == session:
            members.append(Member(int(entry.name), int(parent), int(group), command))
    return members


@dataclass
class BinRun:
    process: Process
    base: str
    prefix: str

    @property
    def pid(self) -> int:
        return self.process.popen.pid

    def members(self) -> list[Member]:
        return session_members(self.pid)

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def api_launcher(self) -> Member:
        return next(m for m in self.members() if "-m cli.serve_api " in m.command)

    def api_masters(self) -> list[Member]:
        return [m for m in self.members() if "-m api.server " in m.command]

    def api_master(self) -> Member:
        masters = self.api_masters()
        assert len(masters) == 1, masters
        return masters[0]

    def in_group(self, group: int) -> list[Member]:
        return [m for m in self.members() if m.group == group]

    def worker(self, n: int) -> Member:
        workers = [m for m in self.members() if f" -n worker-{n}@" in m.command]
        assert len(workers) == 1, f"{len(workers)} processes of worker-{n}"
        return workers[0]


def wait_until(check: Callable[[], bool], timeout: float, run: BinRun, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert run.process.popen.poll() is None, f"bin/run exited:\n{run.process.tail()}"
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not within {timeout}s:\n{run.process.tail()}")


def new_api_ready(run: BinRun, old_group: int) -> bool:
    masters = run.api_masters()
    return bool(masters) and all(m.group != old_group for m in masters) and api_ready(run.base)


def api_ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def bin_run() -> Iterator[BinRun]:
    """bin/run on a free port, against the tests' database and Redis, with queues of its own. Two
    API processes, so that a killed master leaves workers of its own behind to deal with."""
    prefix = f"run{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "2", "PORT": str(port), "API_WORKERS": "2",
           "WORKER_METRICS_PORT": "0"}
    run = BinRun(Process(f"bin-run-{port}", [str(ROOT / "bin" / "run")], env),
                 f"http://127.0.0.1:{port}", prefix)
    try:
        # The first start in a virtualenv also checks it against the base lock.
        wait_until(lambda: api_ready(run.base) and run.log().count(" ready.") >= WORKERS, 120, run,
                   "bin/run serving with its workers")
        yield run
    finally:
        if run.process.popen.poll() is None:
            run.process.popen.send_signal(signal.SIGTERM)
            try:
                run.process.popen.wait(60)
            except Exception:  # noqa: BLE001
                pass
        for member in run.members():  # whatever a failed test left
            try:
                os.kill(member.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        run.process.stop()


def receive(client: httpx.Client, warehouse: str, sku: str) -> str:
    return submit(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1})


def test_a_killed_worker_or_api_comes_back_by_itself_and_commands_keep_completing_until_ctrl_c(auth):
    with bin_run() as run, httpx.Client(base_url=run.base, headers=auth, timeout=30) as client:
        warehouses, sku = [unique("RUN") for _ in range(4)], unique("SKU")
        create_catalog(client, warehouses, [sku])
        wait_for_jobs(client, [receive(client, w, sku) for w in warehouses], timeout=30)

        # A worker: the other goes on applying every warehouse meanwhile, and the killed one comes back.
        killed, other = run.worker(0), run.worker(1)
        os.kill(killed.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        meanwhile = [receive(client, w, sku) for w in warehouses]
        done = wait_for_jobs(client, meanwhile, timeout=BACK_WITHIN_SECONDS)
        assert {job["status"] for job in done.values()} == {"succeeded"}
        print(f"worker killed: commands applied meanwhile, {time.monotonic() - killed_at:.1f}s after")
        wait_until(lambda: len([m for m in run.members() if " -n worker-0@" in m.command]) == 1
                   and run.worker(0).pid != killed.pid, BACK_WITHIN_SECONDS, run, "worker-0 back")
        assert run.worker(1).pid == other.pid

        # The API: uvicorn's master, whose processes must not keep the port from its replacement;
        # then the launcher supervisord started, which leaves a whole uvicorn behind.
        workers_before = {run.worker(n).pid for n in range(WORKERS)}
        for target in ("uvicorn's master", "the API launcher"):
            old_group = run.api_master().group
            assert len(run.in_group(old_group)) >= 3, "uvicorn started no workers; the test proves nothing"
            killed = run.api_master() if target == "uvicorn's master" else run.api_launcher()
            os.kill(killed.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            wait_until(partial(new_api_ready, run, old_group), BACK_WITHIN_SECONDS, run, "the API back")
            print(f"{target} killed: the API ready again after {time.monotonic() - killed_at:.1f}s")
            assert run.in_group(old_group) == [], f"the old API's processes live on after a kill of {target}"
            assert {run.worker(n).pid for n in range(WORKERS)} == workers_before
            done = wait_for_jobs(client, [receive(client, w, sku) for w in warehouses], timeout=30)
            assert {job["status"] for job in done.values()} == {"succeeded"}
        log = run.log()
        assert "exited: worker-" in log and "(terminated by SIGKILL; not expected)" in log
        assert "serve_api: uvicorn exited unasked (killed by SIGKILL)" in log

        # The processes started again stop with the rest.
        stop_and_check_nothing_is_left(run, "Ctrl-C")


def stop_and_check_nothing_is_left(run: BinRun, how: str) -> None:
    started = run.members()
    assert len(started) >= 1 + 4 + WORKERS  # supervisord, the API (launcher, master and two), workers
    if how == "TERM":
        os.kill(run.pid, signal.SIGTERM)
    else:  # Ctrl-C: a terminal signals its foreground process group, bin/run's, which it keeps
        os.killpg(run.pid, signal.SIGINT)
    stopping_at = time.monotonic()
    run.process.popen.wait(60)
    print(f"{how}: bin/run exited after {time.monotonic() - stopping_at:.1f}s")
    # At once: bin/run may exit only once every process it started is gone.
    left = run.members()
    assert left == [], f"left behind: {left}"
    for member in started:
        with pytest.raises(ProcessLookupError):
            os.kill(member.pid, 0)
    assert run.process.popen.returncode == 0


def test_term_stops_every_process_and_bin_run_exits_after_them():
    with bin_run() as run:
        stop_and_check_nothing_is_left(run, "TERM")
