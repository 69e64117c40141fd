"""Celery tasks: thin entry points. A message is a wake-up: the drain (shared/drain.py) finds and
applies the waiting jobs in accepted order, exactly once."""

from collections.abc import Sequence

from shared.celery_app import DRAIN_TASK, LEGACY_APPLY_TASK, celery_app
from shared.drain import drain, wakeup_covered


@celery_app.task(name=DRAIN_TASK)
def drain_slots(slots: Sequence[int], sent_at: float | None = None) -> None:
    """A wake-up applies whatever waits, in any slot that no other worker holds, not only the slots
    it names: with many warehouses each wake-up names few slots, and one transaction for all of
    them costs the worker far less than one per wake-up (the wake-ups that follow find their jobs
    applied, and cost a read). The slots it names are the publisher's record of why it was sent.
    One sent before a finished drain began is dropped unread (shared/drain.py)."""
    if not wakeup_covered(sent_at):
        drain()


@celery_app.task(name=LEGACY_APPLY_TASK)
def apply_jobs_by_id(job_ids: Sequence[str] | str) -> None:
    """Messages sent by an API from before ordering slots, naming job ids: a wake-up all the same."""
    drain()
