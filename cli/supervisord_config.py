"""The processes bin/run starts, written as the configuration of supervisord, which runs them.

    python -m cli.supervisord_config RUN_DIR > RUN_DIR/supervisord.conf

supervisord runs in the foreground as bin/run itself. It starts the API and the workers, starts
again any of them that dies (logging it, and waiting longer after each start that fails), and on TERM
or Ctrl-C stops them all and waits for them before it exits. What they print goes to its stdout and
stderr, so to bin/run's.

`worker_programs` is the one place that says how many workers run and which queues each consumes.
"""

import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cli import serve_api
from shared.celery_app import all_queues, webhooks_queue
from shared.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]

# A program must stay up this long to count as started. One that dies sooner is started again after
# 1 s, then 2 s, 3 s... (supervisord's backoff), and given up after START_RETRIES such starts in a
# row: long enough to ride out a database or Redis restart, short enough that a program that cannot
# start at all (a broken install) ends in a FATAL line instead of a restart loop.
START_SECONDS = 3
START_RETRIES = 20


@dataclass(frozen=True)
class Program:
    name: str
    command: list[str]
    # After TERM, how long supervisord waits before it sends SIGKILL to the program's process group.
    stop_wait_seconds: int
    environment: dict[str, str] = field(default_factory=dict)


def api_processes(profile: str) -> int:
    """SQLite has one writer at a time, so the embedded profile runs one API process: more would
    only take turns. Otherwise one per two cores, from one to four: the API shares the machine with
    the workers and the database, and one process groups more commands per commit (see
    docs/performance.md); each process keeps up to DB_POOL_SIZE + DB_POOL_OVERFLOW connections, so
    four stay well inside MySQL's default max_connections."""
    if os.environ.get("API_WORKERS"):
        return int(os.environ["API_WORKERS"])
    if profile == "embedded":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return min(4, max(1, cores // 2))


def api_program(run_dir: Path, profile: str) -> Program:
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    return Program(
        "api",
        [sys.executable, "-m", "cli.serve_api", str(run_dir / "api.pgid"),
         "--host", host, "--port", port, "--workers", str(api_processes(profile)), "--no-access-log"],
        # serve_api stops uvicorn within its own limits; this is only in case it does not.
        stop_wait_seconds=serve_api.STOP_SECONDS + 2 * serve_api.GRACE_SECONDS + 5,
        # The API's processes add up their metrics through files there (prometheus-client
        # multiprocess mode); bin/run empties it before it starts supervisord.
        environment={"PROMETHEUS_MULTIPROC_DIR": str(run_dir / "metrics")},
    )


# Webhook deliveries attempted at once by bin/run's webhook worker.
WEBHOOK_THREADS = 8


def worker_command(queues: Sequence[str], node: str, pool: str, log_level: str,
                   concurrency: int = 1) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "worker.app", "worker", "-Q", ",".join(queues),
            "--pool", pool, "--concurrency", str(concurrency), "-n", f"{node}@%h", "--without-gossip",
            "--without-mingle", "--loglevel", log_level]


def worker_processes(profile: str) -> int:
    """The embedded profile runs one worker: SQLite has one writer. Otherwise two by default, so
    that one worker's restart or a stuck transaction never stops the applying (WORKER_PROCESSES)."""
    if profile == "embedded":
        return 1
    return int(os.environ.get("WORKER_PROCESSES", "2"))


def worker_programs(profile: str, queues: Sequence[str], log_level: str) -> list[Program]:
    """The workers: each consumes every shard queue. Any number of them may, on any hosts: the
    drain keeps each warehouse's commands in accepted order (shared/drain.py), so nothing here has
    to keep "one consumer per queue". Each serves its metrics on its own port (WORKER_METRICS_PORT
    plus its number).

    The server profile's workers use the solo pool, which applies jobs in the worker process itself:
    a forked pool child cost a pickled hand-over per message and a second process's share of the
    cores (see docs/performance.md); more throughput comes from more workers, not pool children.
    The embedded profile's one worker uses one thread, not a forked child: without an event loop, a
    prefork pool whose child died hangs the replacement on a lock the dead child held.

    A worker's current transaction may take a few seconds to commit after TERM; one killed instead
    rolls back, and its jobs are applied by the other worker or the sweep, once all the same.
    """
    if profile == "embedded":
        return [Program("worker-embedded", worker_command([*queues, webhooks_queue()], "embedded",
                                                          "threads", log_level), stop_wait_seconds=30)]
    base_port = get_settings().worker_metrics_port
    count = worker_processes(profile)
    workers = [Program(f"worker-{n}", worker_command(queues, f"worker-{n}", "solo", log_level),
                       stop_wait_seconds=30,
                       environment={"WORKER_METRICS_PORT": str(base_port + n if base_port else 0)})
               for n in range(count)]
    # Webhook deliveries on a worker of their own, with threads: a slow receiver holds a thread,
    # never a stock command (shared/webhooks/).
    workers.append(Program("worker-webhooks", worker_command([webhooks_queue()], "worker-webhooks",
                                                             "threads", log_level, WEBHOOK_THREADS),
                           stop_wait_seconds=30,
                           environment={"WORKER_METRICS_PORT": str(base_port + count if base_port else 0)}))
    return workers


def _value(text: str) -> str:
    # supervisord expands %(name)s in every value, so a literal % (Celery's %h) is written %%.
    return text.replace("%", "%%")


def _section(title: str, options: dict[str, object]) -> str:
    lines = [f"[{title}]"] + [f"{key}={_value(str(value))}" for key, value in options.items()]
    return "\n".join(lines) + "\n"


def _program_section(program: Program, priority: int) -> str:
    options: dict[str, object] = {"command": shlex.join(program.command), "directory": ROOT}
    if program.environment:
        options["environment"] = ",".join(f'{key}="{value}"' for key, value in program.environment.items())
    return _section(f"program:{program.name}", options | {
        "priority": priority,
        "autorestart": "true",
        "startsecs": START_SECONDS,
        "startretries": START_RETRIES,
        "stopsignal": "TERM",
        "stopwaitsecs": program.stop_wait_seconds,
        # If TERM was not enough, SIGKILL the process and any children it made.
        "killasgroup": "true",
        # Straight through to bin/run's own stdout and stderr; nothing to rotate.
        "stdout_logfile": "/dev/stdout",
        "stdout_logfile_maxbytes": 0,
        "stderr_logfile": "/dev/stderr",
        "stderr_logfile_maxbytes": 0,
    })


def render(run_dir: Path, api: Program, workers: Sequence[Program]) -> str:
    supervisord = {
        "nodaemon": "true",
        # Its own lines through the same appending stdout as the programs' output, not a second
        # stream beside it: a log file that bin/run's stdout goes to keeps every line.
        "silent": "true",
        "logfile": "/dev/stdout",
        "logfile_maxbytes": 0,
        "pidfile": run_dir / "supervisord.pid",
    }
    if os.geteuid() == 0:
        supervisord["user"] = "root"  # said on purpose, so it does not warn that it runs as root
    # Higher priority starts last and stops first: the API stops taking commands before the
    # workers stop. The workers form one group, so they stop together.
    sections = [_section("supervisord", supervisord), _program_section(api, priority=200)]
    sections += [_program_section(worker, priority=100) for worker in workers]
    sections.append(_section("group:workers", {"programs": ",".join(w.name for w in workers),
                                               "priority": 100}))
    return "\n".join(sections)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m cli.supervisord_config RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[0]).resolve()
    settings = get_settings()
    queues = all_queues()
    api = api_program(run_dir, settings.profile)
    print(render(run_dir, api, worker_programs(settings.profile, queues, settings.log_level.upper())))
    note = " (for trying the service, not for production)" if settings.profile == "embedded" else ""
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    print(f"API on http://{host}:{port} (docs at /docs); {worker_processes(settings.profile)} worker(s) "
          f"on every queue ({' '.join(queues)}); "
          f"profile: {settings.profile}{note}. Ctrl-C stops.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
