"""Worker entry point: `celery -A worker.app worker -Q stock.0`."""

from worker.metrics_dir import use_private_metrics_dir

# Before anything imports prometheus_client: it decides at import where the counts live.
use_private_metrics_dir()

import logging  # noqa: E402

from celery.signals import setup_logging, worker_process_init  # noqa: E402

from shared.celery_app import celery_app  # noqa: E402
from shared.db import get_engine  # noqa: E402
from shared.logs import configure_logging  # noqa: E402
from shared.settings import get_settings  # noqa: E402
from worker import recovery, sweep, tasks  # noqa: E402,F401  (registers the tasks and signal handlers)

app = celery_app


@setup_logging.connect
def _json_logs(loglevel=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    """Connected, so Celery leaves logging to us: its own lines are JSON like ours."""
    settings = get_settings()
    level = logging.getLevelName(loglevel) if isinstance(loglevel, int) else loglevel
    pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else ""
    configure_logging(level or settings.log_level, secrets=(pepper,))


@worker_process_init.connect
def _own_connections(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    """Only for the prefork pool (bin/run and the images use solo, which forks nothing). A pool
    process forked after the parent used the database (start-up recovery runs in the
    parent) inherits its pooled connections: two processes on one socket. Drop them, unclosed,
    so the child opens its own and the parent's stay intact."""
    get_engine().dispose(close=False)
