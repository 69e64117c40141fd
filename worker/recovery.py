"""On worker start, finish the unfinished jobs of the shards it consumes, oldest first.

Each shard queue has exactly one consumer, so when a worker starts on a shard, nothing else is
applying that shard's jobs. A job still `running` there was abandoned by a worker that died, and its
message waits in the broker's unacked set until the visibility timeout (an hour); a `queued` job may
have lost its message to a Redis restart without persistence. Applying them here, in submission order
and before this worker takes new messages, keeps the shard's order. It is safe because applying is
exactly-once: the messages that arrive later find their jobs finished and change nothing.
"""

import logging
from datetime import datetime
from typing import Any

from celery.signals import worker_ready
from sqlalchemy import select

from shared.celery_app import all_queues
from shared.db import session_scope
from shared.models import Job, utcnow
from worker.metrics import RECOVERED
from worker.tasks import run_in_batches

log = logging.getLogger(__name__)


def unfinished(shards: list[int], submitted_before: datetime) -> list[str]:
    """Queued or running jobs of these shards accepted before then, oldest first. A job whose
    publish is still under way is safe to take too: its message, when it comes, finds it done."""
    with session_scope() as session:
        return list(session.scalars(
            select(Job.id).where(Job.shard.in_(shards), Job.status.in_(("queued", "running")),
                                 Job.submitted_at <= submitted_before)
            .order_by(Job.submitted_at, Job.id)))


def finish_unfinished(shards: list[int], submitted_before: datetime, cause: str, why: str) -> int:
    """Apply those jobs in that order; returns how many there were."""
    job_ids = unfinished(shards, submitted_before)
    if job_ids:
        log.warning("finishing %d unfinished job(s) of shards %s: %s", len(job_ids), shards, why)
        RECOVERED.labels(cause).inc(len(job_ids))
    run_in_batches(job_ids)
    return len(job_ids)


def consumed_shards(consumer: Any) -> list[int]:
    """The shards whose queues this worker consumes."""
    consumed = {queue.name for queue in consumer.task_consumer.queues} if consumer else set()
    return [i for i, name in enumerate(all_queues()) if name in consumed]


@worker_ready.connect
def _on_worker_ready(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    shards = consumed_shards(sender)
    if not shards:
        return
    try:
        finish_unfinished(shards, utcnow(), "start", "abandoned before this worker started")
    except Exception:
        # Never keep the worker from starting: the broker will redeliver after the visibility timeout.
        log.exception("could not finish abandoned jobs")
