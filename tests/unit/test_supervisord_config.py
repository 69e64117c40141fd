"""What bin/run asks supervisord to run, read back by supervisord's own configuration parser."""

import shlex
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from cli.supervisord_config import api_processes, api_program, render, worker_programs
from shared.celery_app import webhooks_queue

QUEUES = ["stock.0", "stock.1", "stock.2"]


def consumed(command: list[str]) -> list[str]:
    return command[command.index("-Q") + 1].split(",")


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_the_server_profile_runs_solo_workers_each_on_every_queue_with_a_metrics_port_each(monkeypatch):
    monkeypatch.delenv("WORKER_PROCESSES", raising=False)
    *workers, webhooks = worker_programs("server", QUEUES, "INFO")
    assert len(workers) == 2
    assert [consumed(w.command) for w in workers] == [QUEUES, QUEUES]
    assert {option(w.command, "--pool") for w in workers} == {"solo"}
    assert len({w.name for w in workers}) == len({option(w.command, "-n") for w in workers}) == 2
    assert [w.environment["WORKER_METRICS_PORT"] for w in [*workers, webhooks]] == ["9200", "9201", "9202"]
    # Webhook deliveries on a worker of their own, never on the stock workers' queues.
    assert consumed(webhooks.command) == [webhooks_queue()]
    assert option(webhooks.command, "--pool") == "threads"
    assert int(option(webhooks.command, "--concurrency")) > 1
    monkeypatch.setenv("WORKER_PROCESSES", "5")
    assert len(worker_programs("server", QUEUES, "INFO")) == 5 + 1


def test_the_embedded_profile_runs_one_worker_on_every_queue_with_one_thread():
    [worker] = worker_programs("embedded", QUEUES, "INFO")
    assert consumed(worker.command) == [*QUEUES, webhooks_queue()]
    assert option(worker.command, "--pool") == "threads"
    assert option(worker.command, "--concurrency") == "1"


@pytest.mark.parametrize(("profile", "cores", "expected"), [
    ("embedded", 16, 1), ("server", 1, 1), ("server", 2, 1), ("server", 4, 2), ("server", 64, 4)])
def test_api_processes_follow_the_cores(monkeypatch, profile, cores, expected):
    monkeypatch.delenv("API_WORKERS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: set(range(cores)))
    assert api_processes(profile) == expected


def test_supervisord_reads_back_every_program_as_written(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PORT", "18123")
    monkeypatch.setenv("API_WORKERS", "2")
    api = api_program(tmp_path, "server")
    workers = worker_programs("server", QUEUES, "INFO")
    config = tmp_path / "supervisord.conf"
    config.write_text(render(tmp_path, api, workers))

    options = ServerOptions()
    options.realize(args=["-c", str(config)])
    assert options.nodaemon
    programs = {p.name: p for group in options.process_group_configs for p in group.process_configs}
    assert set(programs) == {"api", *(w.name for w in workers)}
    for written in [api, *workers]:
        read = programs[written.name]
        # Celery's %h reaches the worker as it was meant, not expanded by supervisord.
        assert shlex.split(read.command) == written.command
        assert read.autorestart and read.killasgroup
        assert (read.stdout_logfile, read.stderr_logfile) == ("/dev/stdout", "/dev/stderr")
    assert option(api.command, "--port") == "18123" and option(api.command, "--workers") == "2"
    assert programs["api"].environment == {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    # The API stops first, and takes commands only once the workers were started.
    groups = {group.name: group.priority for group in options.process_group_configs}
    assert groups["api"] > groups["workers"]
