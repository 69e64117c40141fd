"""Celery tasks: thin entry points. A message is a wake-up naming ordering slots; the drain
(shared/drain.py) finds and applies their waiting jobs in accepted order, exactly once."""

from collections.abc import Sequence

from sqlalchemy import bindparam, select

from shared.celery_app import DRAIN_TASK, LEGACY_APPLY_TASK, celery_app
from shared.db import session_scope
from shared.drain import drain
from shared.models import Job

_SLOTS_OF_JOBS = select(Job.slot).distinct().where(Job.id.in_(bindparam("ids", expanding=True)))


@celery_app.task(name=DRAIN_TASK)
def drain_slots(slots: Sequence[int]) -> None:
    drain(slots)


@celery_app.task(name=LEGACY_APPLY_TASK)
def apply_jobs_by_id(job_ids: Sequence[str] | str) -> None:
    """Messages sent by an API from before ordering slots, naming job ids: drain their slots."""
    ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
    with session_scope() as session:
        slots = list(session.scalars(_SLOTS_OF_JOBS, {"ids": ids}))
    drain(slots)
