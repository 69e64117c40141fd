"""Metrics of the apply path: jobs finished, transactions and their retries. Recorded by whatever
process applies jobs (a worker, or the CSV import); a worker serves them (worker/metrics.py)."""

from collections.abc import Sequence
from datetime import datetime

from prometheus_client import Counter, Histogram

from shared.jobs.outcome import JobOutcome

APPLIED = Counter(
    "stock_commands_applied_total",
    "Jobs the worker finished, by command type (`batch` for a batch) and outcome (`succeeded`, "
    "`partially_failed`, or the failure's problem type such as `insufficient-stock`).",
    ["type", "outcome"])
BATCH_LINES = Counter("stock_batch_lines_applied_total",
                      "Lines of the batches the worker finished, by outcome (succeeded, failed).",
                      ["outcome"])
ALREADY_APPLIED = Counter("stock_jobs_already_applied_total",
                          "Jobs found finished when a transaction came to apply them (changing nothing).")
SWEPT = Counter("stock_jobs_recovered_total",
                "Jobs the sweep applied: waiting longer than SWEEP_AFTER_SECONDS with no worker on "
                "them (a lost message, a dead or stuck worker, or a backlog that old).", ["cause"])
DRAINS = Counter(
    "stock_worker_drains_total",
    "Drains of ordering slots (a wake-up message, or the sweep), by how they ended: `applied` (jobs "
    "were applied), `nothing_waiting` (an earlier drain had applied them: a redelivered or late "
    "wake-up), `held_elsewhere` (another worker holds the slots and applies them), `covered` (a "
    "wake-up sent before a whole drain that came after it had started: not drained again).", ["result"])
HANDED_OFF = Counter(
    "stock_worker_handoffs_total",
    "Wake-ups a worker sent for waiting slots its transaction left to the other workers (a bulk "
    "upload in one warehouse while another's waits).")
BATCH_SIZE = Histogram("stock_worker_batch_jobs", "Jobs applied together in one transaction.",
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000))
TRANSACTION_SECONDS = Histogram(
    "stock_worker_transaction_seconds",
    "One attempt of a worker transaction, from its first statement to its commit or rollback, by "
    "transaction (apply) and result (committed, rolled_back).",
    ["transaction", "result"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
RETRIES = Counter("stock_worker_transaction_retries_total",
                  "Worker transactions rolled back and run again, by transaction and reason (deadlock, "
                  "lock_wait, database_unavailable).", ["transaction", "reason"])
ACCEPT_TO_COMPLETE = Histogram(
    "stock_job_accept_to_complete_seconds",
    "From the API accepting a job to the worker committing its outcome, by kind (command, batch).",
    ["kind"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900))

# Series that alerts watch exist from the start, at 0, so rate() and increase() over them are
# defined before the first event (an alert on the first recovery would otherwise never fire).
for _reason in ("deadlock", "lock_wait", "database_unavailable"):
    RETRIES.labels("apply", _reason)
RETRIES.labels("find_waiting", "database_unavailable")
SWEPT.labels("sweep")
for _result in ("applied", "nothing_waiting", "held_elsewhere", "covered"):
    DRAINS.labels(_result)


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
