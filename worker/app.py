"""Worker entry point: `celery -A worker.app worker -Q stock.0,stock.1,...` (every worker may
consume every shard queue: the drain keeps each warehouse in order, shared/drain.py)."""

from worker.metrics_dir import use_private_metrics_dir

# Before anything imports prometheus_client: it decides at import where the counts live.
use_private_metrics_dir()

import logging  # noqa: E402

from celery.signals import setup_logging, worker_process_init, worker_ready, worker_shutdown  # noqa: E402

from shared.celery_app import celery_app, webhooks_queue  # noqa: E402
from shared.db import end_idle_transactions_after, get_engine  # noqa: E402
from shared.logs import configure_logging  # noqa: E402
from shared.settings import get_settings  # noqa: E402
from worker import metrics, tasks, webhooks  # noqa: E402,F401  (registers the tasks and signal handlers)
from worker.expiry import ExpiryScanner, start_expiry_scanner  # noqa: E402
from worker.priority import niceness_for, yield_cpu  # noqa: E402
from worker.sweep import Sweeper, start_sweeper  # noqa: E402

app = celery_app
# A worker stopped or cut off while holding slot locks loses them after this long.
end_idle_transactions_after(get_engine(), get_settings().db_idle_transaction_timeout_seconds)
_sweeper: Sweeper | None = None
_expiry: ExpiryScanner | None = None
_dispatcher: webhooks.Dispatcher | None = None


@setup_logging.connect
def _json_logs(loglevel=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    """Connected, so Celery leaves logging to us: its own lines are JSON like ours."""
    settings = get_settings()
    level = logging.getLevelName(loglevel) if isinstance(loglevel, int) else loglevel
    pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else ""
    configure_logging(level or settings.log_level, secrets=(pepper,))


@worker_ready.connect
def _start_threads(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    """A worker on the shard queues sweeps and expires reservations; one on the webhooks queue
    dispatches deliveries, and yields the CPU to stock workers if that is all it consumes. Each
    runs at its kind's niceness (worker/priority.py)."""
    global _sweeper, _expiry, _dispatcher
    consumed = {queue.name for queue in sender.task_consumer.queues} if sender else set()
    if consumed - {webhooks_queue()}:
        _sweeper = start_sweeper()
        _expiry = start_expiry_scanner()
    if consumed:
        yield_cpu(niceness_for(consumed, webhooks_queue(), get_settings()))
    if webhooks_queue() in consumed:
        _dispatcher = webhooks.Dispatcher()
        _dispatcher.start()


@worker_shutdown.connect
def _stop_threads(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    for thread in (_sweeper, _expiry, _dispatcher):
        if thread is not None:
            thread.stop()


@worker_process_init.connect
def _own_connections(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    """Only for the prefork pool (bin/run and the images use solo, which forks nothing). A pool
    process forked after the parent used the database (its sweep) inherits its pooled
    connections: two processes on one socket. Drop them, unclosed, so the child opens its own and
    the parent's stay intact."""
    get_engine().dispose(close=False)
