"""Finish the jobs whose message the broker lost, while the worker keeps running.

The API commits a job before it queues its message, so a job can outlive its message: a Redis
without persistence restarted, or one on `appendfsync everysec` crashed within its last second of
appends. A worker finishes such jobs when it starts (worker/recovery.py); one that keeps running
would never see them. So every SWEEP_INTERVAL_SECONDS each worker sends a sweep message through
each shard queue it consumes, and the sweep applies that shard's jobs still unfinished after
SWEEP_INTERVAL_SECONDS, oldest first.

This keeps each warehouse's order. The sweep runs in the shard's one consumer, one task at a time
with the batches, and it takes an oldest-first run of the shard's unfinished jobs: the very jobs the
queue would apply next, in the same order. Messages still on their way for them find them finished
(applying is exactly-once), and the only jobs it can apply late are those whose message is gone.
"""

import logging
from datetime import timedelta
from typing import Any

from celery.signals import worker_ready

from shared.celery_app import celery_app, queue_name
from shared.models import utcnow
from shared.settings import get_settings
from worker.recovery import consumed_shards, finish_unfinished

log = logging.getLogger(__name__)

SWEEP_TASK = "stock.sweep_shard"


@celery_app.task(name=SWEEP_TASK)
def sweep_shard(shard: int) -> int:
    """Apply the shard's jobs unfinished for longer than the interval; returns how many."""
    older_than = timedelta(seconds=get_settings().sweep_interval_seconds)
    return finish_unfinished([shard], utcnow() - older_than, "sweep", "their message was lost")


def send_sweeps(shards: list[int]) -> None:
    for shard in shards:
        try:
            celery_app.send_task(SWEEP_TASK, args=[shard], queue=queue_name(shard), retry=False)
        except Exception:  # noqa: BLE001  (the broker is down: the next tick tries again)
            log.warning("could not send the sweep of shard %d", shard, exc_info=True)


@worker_ready.connect
def _schedule_sweeps(sender: Any = None, **_kwargs: Any) -> None:
    shards = consumed_shards(sender)
    if shards:
        # The consumer's own timer: it runs on the worker's event loop, no thread of its own.
        sender.timer.call_repeatedly(get_settings().sweep_interval_seconds, send_sweeps, (shards,))
