"""Celery tasks: thin entry points that hand job ids to the shared apply path."""

import logging
import uuid
from collections.abc import Mapping, Sequence

from celery_batches import Batches, SimpleRequest
from sqlalchemy import bindparam, func, text, update
from sqlalchemy.orm import Session

from shared import jobs
from shared.celery_app import APPLY_TASK, celery_app
from shared.logs import log_context
from shared.models import Job, utcnow
from shared.settings import get_settings
from shared.status_board import StatusBoardUnavailable, get_status_board
from shared.stock.apply import JobOutcome, apply_jobs
from worker.metrics import BATCH_SIZE, record_outcomes
from worker.transaction import run_in_transaction

log = logging.getLogger(__name__)


# On the table, not the ORM entity, and built once: the ORM's bulk-update machinery and building the
# statement per batch cost more than running it.
_job = Job.__table__.c
_MARK_RUNNING = (update(Job.__table__)
                 .where(_job.id.in_(bindparam("ids", expanding=True)), _job.status.in_(("queued", "running")))
                 .values(status="running", attempts=_job.attempts + 1,
                         started_at=func.coalesce(_job.started_at,
                                                  bindparam("now", type_=_job.started_at.type))))


def _mark_running(session: Session, job_ids: Sequence[str]) -> None:
    """Count the attempt before applying, so a job that keeps killing workers is given up."""
    session.execute(_MARK_RUNNING, {"ids": list(job_ids), "now": utcnow()})


def run_jobs(job_ids: Sequence[str], request_ids: Mapping[str, str] | None = None) -> list[JobOutcome]:
    """Apply jobs exactly once and publish their outcomes. `request_ids` names the API request that
    accepted each job, for the log lines; a batch id ties the lines of one transaction together."""
    with log_context(batch_id=uuid.uuid4().hex[:12]):
        outcomes = _run(job_ids)
        for outcome in outcomes:
            with log_context(job_id=outcome.job_id, request_id=(request_ids or {}).get(outcome.job_id)):
                _report(outcome)
    return outcomes


def _run(job_ids: Sequence[str]) -> list[JobOutcome]:
    settings = get_settings()
    board = get_status_board()
    BATCH_SIZE.observe(len(job_ids))
    run_in_transaction(lambda s: _mark_running(s, job_ids),
                       max_lock_retries=settings.max_transaction_retries, name="mark_running")
    # Polls now read the database, which says `running`, until the outcome is published.
    board.forget(job_ids)
    outcomes = run_in_transaction(
        lambda s: apply_jobs(s, job_ids, max_attempts=settings.max_job_attempts),
        max_lock_retries=settings.max_transaction_retries, name="apply")
    record_outcomes(outcomes)
    try:
        board.publish_many([jobs.from_outcome(o) for o in outcomes])
    except StatusBoardUnavailable:
        # The database has the outcomes; pollers fall back to it.
        log.warning("could not publish %d job outcomes", len(outcomes), exc_info=True)
    return outcomes


def _report(outcome: JobOutcome) -> None:
    """One line per job: its end, or that a redelivery found it finished."""
    if outcome.already_applied:
        log.info("job %s was already applied; redelivery changed nothing", outcome.job_id)
        return
    seconds = (outcome.completed_at - outcome.submitted_at).total_seconds() if outcome.completed_at else None
    log.info("job %s", outcome.status, extra={
        "kind": outcome.kind, "type": outcome.command_type, "status": outcome.status,
        "problem": (outcome.error or {}).get("type"), "accept_to_complete_ms":
        round(seconds * 1000, 1) if seconds is not None else None})


_settings = get_settings()


@celery_app.task(name=APPLY_TASK, base=Batches, flush_every=_settings.apply_batch_size,
                 flush_interval=_settings.apply_batch_interval_seconds)
def apply_jobs_task(requests: Sequence[SimpleRequest]) -> None:
    """Many queued jobs in one locked transaction: one commit per lock hold instead of one per
    command, which is what lifts a hot SKU past the one-commit-per-command ceiling. Each job still
    gets its own outcome, and the messages are acked only after the commit (acks_late)."""
    job_ids: list[str] = []
    request_ids: dict[str, str] = {}
    for request in requests:
        ids = request.args[0]
        job_ids.extend([ids] if isinstance(ids, str) else ids)  # one id: a message from before groups
        # The API names the request that accepted each job in a header (shared.celery_app.enqueue_groups).
        request_ids.update((request.request_dict or {}).get("request_ids") or {})
    run_in_batches(_in_accepted_order(job_ids), request_ids)


_BATCH_JOBS = text("SELECT id, shard, submitted_at FROM job WHERE id IN :ids").bindparams(
    bindparam("ids", expanding=True))
# The shards' other queued jobs accepted up to the batch's latest, oldest first.
_QUEUED_UP_TO = text(
    "SELECT id, submitted_at FROM job WHERE status = 'queued' AND shard IN :shards "
    "AND submitted_at <= :latest AND id NOT IN :ids ORDER BY submitted_at, id LIMIT :most").bindparams(
    bindparam("shards", expanding=True), bindparam("ids", expanding=True))


def _in_accepted_order(job_ids: Sequence[str]) -> list[str]:
    """These jobs, with their shards' queued jobs accepted before the latest of them, in accepted
    order. Each API process publishes a few milliseconds after its 202s, a few groups per message
    (api/publisher.py), so with several API processes a command accepted after another, by another
    process, can reach the queue first or share a message with older ones. Usually nothing is
    added; a job whose message was lost is found here too, at its shard's next batch rather than
    at the next sweep. Order is by submitted_at, the time the API accepted the job, as recovery
    and the sweep have it."""
    if not job_ids:
        return []

    def read(session: Session) -> list[str]:
        own = session.execute(_BATCH_JOBS, {"ids": list(job_ids)}).all()
        if not own:
            return list(job_ids)  # unknown ids: apply_jobs skips them
        found = {row.id: row.submitted_at for row in own}
        queued = session.execute(_QUEUED_UP_TO, {
            "shards": sorted({row.shard for row in own}), "latest": max(found.values()),
            "ids": list(found), "most": 10 * _settings.apply_batch_size}).all()
        # Equal times keep the message's order; a job without a message goes before them.
        position = {job_id: n for n, job_id in enumerate(dict.fromkeys(job_ids))}
        order = {row.id: (row.submitted_at, 0, row.id) for row in queued}
        order.update({job_id: (at, 1, position[job_id]) for job_id, at in found.items()})
        return sorted(order, key=order.__getitem__) + [j for j in job_ids if j not in found]

    return run_in_transaction(read, max_lock_retries=_settings.max_transaction_retries, name="order")


def run_in_batches(job_ids: Sequence[str], request_ids: Mapping[str, str] | None = None) -> None:
    """Jobs in this order, at most APPLY_BATCH_SIZE per transaction (and lock hold): messages carry
    groups of jobs, and recovery hands over whole backlogs."""
    size = _settings.apply_batch_size
    for start in range(0, len(job_ids), size):
        run_jobs(job_ids[start:start + size], request_ids)
