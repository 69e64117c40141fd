"""The worker's Prometheus metrics, and the endpoint that serves them.

Each worker process serves http://WORKER_METRICS_HOST:(WORKER_METRICS_PORT + the lowest shard it
consumes)/metrics, so bin/run's one worker per shard queue gets one port each. The endpoint starts
when the worker is ready; a port already taken is logged and the worker goes on applying jobs, since
stock matters more than its metrics.
"""

import logging
from collections.abc import Sequence
from datetime import datetime

from celery.signals import worker_ready
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client import multiprocess as prometheus_multiprocess

from shared.celery_app import all_queues
from shared.settings import get_settings
from shared.stock.apply import JobOutcome

log = logging.getLogger(__name__)

APPLIED = Counter(
    "stock_commands_applied_total",
    "Jobs the worker finished, by command type (`batch` for a batch) and outcome (`succeeded`, "
    "`partially_failed`, or the failure's problem type such as `insufficient-stock`).",
    ["type", "outcome"])
BATCH_LINES = Counter("stock_batch_lines_applied_total",
                      "Lines of the batches the worker finished, by outcome (succeeded, failed).",
                      ["outcome"])
ALREADY_APPLIED = Counter("stock_jobs_already_applied_total",
                          "Deliveries of jobs that were already finished: redeliveries, changing nothing.")
RECOVERED = Counter("stock_jobs_recovered_total",
                    "Unfinished jobs a worker applied without their message, by cause: `start` (left by "
                    "a worker that died) or `sweep` (the broker lost the message).", ["cause"])
BATCH_SIZE = Histogram("stock_worker_batch_jobs", "Jobs applied together in one transaction.",
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000))
TRANSACTION_SECONDS = Histogram(
    "stock_worker_transaction_seconds",
    "One attempt of a worker transaction, from its first statement to its commit or rollback, by "
    "transaction (mark_running, apply) and result (committed, retried, failed).",
    ["transaction", "result"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
RETRIES = Counter("stock_worker_transaction_retries_total",
                  "Worker transactions rolled back and run again, by transaction and reason (deadlock, "
                  "lock_wait, database_unavailable).", ["transaction", "reason"])
ACCEPT_TO_COMPLETE = Histogram(
    "stock_job_accept_to_complete_seconds",
    "From the API accepting a job to the worker committing its outcome, by kind (command, batch).",
    ["kind"], buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900))


# Series that alerts watch exist from the start, at 0, so rate() over them is defined before the
# first retry.
for _transaction in ("mark_running", "apply"):
    for _reason in ("deadlock", "lock_wait", "database_unavailable"):
        RETRIES.labels(_transaction, _reason)


def outcome_label(outcome: JobOutcome) -> str:
    """`succeeded`, `partially_failed`, or why the job failed (its problem type's slug)."""
    if outcome.status == "failed" and outcome.error and "type" in outcome.error:
        return str(outcome.error["type"]).rsplit("/", 1)[-1]
    return outcome.status


def record_outcomes(outcomes: Sequence[JobOutcome]) -> None:
    for outcome in outcomes:
        if outcome.already_applied:
            ALREADY_APPLIED.inc()
            continue
        APPLIED.labels(outcome.command_type, outcome_label(outcome)).inc()
        if outcome.kind == "batch" and isinstance(outcome.result, dict):
            failed = int(outcome.result.get("failed", 0))
            BATCH_LINES.labels("failed").inc(failed)
            BATCH_LINES.labels("succeeded").inc(int(outcome.result.get("total", failed)) - failed)
        if outcome.completed_at is not None:
            ACCEPT_TO_COMPLETE.labels(outcome.kind).observe(
                _seconds(outcome.submitted_at, outcome.completed_at))


def _seconds(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds(), 0.0)


def metrics_port(consumed_queues: set[str]) -> int:
    """WORKER_METRICS_PORT plus the lowest shard consumed; 0 means no endpoint."""
    base = get_settings().worker_metrics_port
    shards = [shard for shard, name in enumerate(all_queues()) if name in consumed_queues]
    return base + min(shards, default=0) if base else 0


@worker_ready.connect
def _serve_metrics(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    consumed = {queue.name for queue in sender.task_consumer.queues} if sender else set()
    port = metrics_port(consumed)
    if not port:
        return
    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry)
    host = get_settings().worker_metrics_host
    try:
        start_http_server(port, addr=host, registry=registry)
    except OSError:
        log.error("could not serve worker metrics on %s:%d", host, port, exc_info=True)
        return
    log.info("worker metrics on http://%s:%d/metrics", host, port, extra={"metrics_port": port})
