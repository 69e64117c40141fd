"""On worker start, finish the jobs a dead consumer of the same shards left `running`.

Each shard queue has exactly one consumer, so when a worker starts on a shard, no other process can
be applying that shard's jobs: a job still marked `running` there was abandoned by a worker that died
(its message waits in the broker's unacked set until the visibility timeout, an hour). Applying it
here, before this worker takes new messages, keeps the shard's order; it is safe because applying is
exactly-once, so the late redelivery of the old message will change nothing.
"""

import logging

from celery.signals import worker_ready
from sqlalchemy import select

from shared.celery_app import all_queues
from shared.db import session_scope
from shared.models import Job
from worker.tasks import run_jobs

log = logging.getLogger(__name__)


def _abandoned(shards: list[int]) -> list[str]:
    with session_scope() as session:
        return list(session.scalars(select(Job.id).where(Job.status == "running", Job.shard.in_(shards))
                                    .order_by(Job.submitted_at)))


@worker_ready.connect
def _on_worker_ready(sender=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    consumed = {queue.name for queue in sender.task_consumer.queues} if sender else set()
    shards = [i for i, name in enumerate(all_queues()) if name in consumed]
    if not shards:
        return
    try:
        job_ids = _abandoned(shards)
        if job_ids:
            log.warning("finishing %d job(s) left running by a dead worker: %s", len(job_ids), job_ids)
            run_jobs(job_ids)
    except Exception:
        # Never keep the worker from starting: the broker will redeliver after the visibility timeout.
        log.exception("could not finish abandoned jobs")
