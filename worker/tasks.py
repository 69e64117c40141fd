"""Celery tasks: thin entry points that hand job ids to the shared apply path."""

import logging
from collections.abc import Sequence

import redis
from celery_batches import Batches, SimpleRequest
from sqlalchemy import func, update
from sqlalchemy.orm import Session

from shared import jobs
from shared.celery_app import APPLY_TASK, celery_app
from shared.models import Job, utcnow
from shared.redis_client import get_redis
from shared.settings import get_settings
from shared.stock.apply import JobOutcome, apply_jobs
from worker.transaction import run_in_transaction

log = logging.getLogger(__name__)


def _mark_running(session: Session, job_ids: Sequence[str]) -> None:
    """Count the attempt before applying, so a job that keeps killing workers is given up."""
    session.execute(
        update(Job).where(Job.id.in_(job_ids), Job.status.in_(("queued", "running")))
        .values(status="running", attempts=Job.attempts + 1,
                started_at=func.coalesce(Job.started_at, utcnow())))


def run_jobs(job_ids: Sequence[str]) -> list[JobOutcome]:
    """Apply jobs exactly once and publish their outcomes."""
    settings = get_settings()
    client = get_redis()
    run_in_transaction(lambda s: _mark_running(s, job_ids),
                       max_lock_retries=settings.max_transaction_retries)
    try:
        # Polls now read MySQL, which says `running`, until the outcome is published.
        client.delete(*(jobs.status_key(j) for j in job_ids))
    except redis.RedisError:
        log.warning("could not clear job status copies", exc_info=True)
    outcomes = run_in_transaction(
        lambda s: apply_jobs(s, job_ids, max_attempts=settings.max_job_attempts),
        max_lock_retries=settings.max_transaction_retries)
    for outcome in outcomes:
        if outcome.already_applied:
            log.info("job %s was already applied; redelivery changed nothing", outcome.job_id)
        try:
            jobs.publish(client, jobs.from_outcome(outcome), settings.job_status_ttl_seconds)
        except redis.RedisError:
            # MySQL has the outcome; pollers fall back to it.
            log.warning("could not publish job %s", outcome.job_id, exc_info=True)
    return outcomes


_settings = get_settings()


@celery_app.task(name=APPLY_TASK, base=Batches, flush_every=_settings.apply_batch_size,
                 flush_interval=_settings.apply_batch_interval_seconds)
def apply_jobs_task(requests: Sequence[SimpleRequest]) -> None:
    """Many queued jobs in one locked transaction: one commit per lock hold instead of one per
    command, which is what lifts a hot SKU past the one-commit-per-command ceiling. Each job still
    gets its own outcome, and the messages are acked only after the commit (acks_late)."""
    run_jobs([request.args[0] for request in requests])
