"""Per-shard figures about waiting work, for monitoring: how many jobs each shard has accepted and
not finished (what the 503 high-water mark counts), how old the oldest of them is, and how many
messages wait in its broker queue. Read when scraped, never per request."""

from dataclasses import dataclass
from datetime import datetime

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.celery_app import all_queues
from shared.jobs.status import UNFINISHED
from shared.models import Job
from shared.ordering import shard_for_slot
from shared.settings import get_settings


@dataclass
class ShardBacklog:
    queued: int = 0
    running: int = 0
    oldest_submitted_at: datetime | None = None


def unfinished_jobs(session: Session) -> dict[int, ShardBacklog]:
    """{shard: its queued and running jobs}, by the queue their slots' wake-ups go to today;
    shards with none are left out. One range scan of the (status, slot, submitted_at) index over
    the unfinished jobs only (at most about MAX_QUEUED_JOBS of them, since the API refuses work
    beyond that)."""
    shard_count = get_settings().shard_count
    rows = session.execute(
        select(Job.status, Job.slot, func.count(), func.min(Job.submitted_at))
        .where(Job.status.in_(UNFINISHED)).group_by(Job.status, Job.slot))
    backlog: dict[int, ShardBacklog] = {}
    for status, slot, count, oldest in rows:
        shard_backlog = backlog.setdefault(shard_for_slot(slot, shard_count), ShardBacklog())
        setattr(shard_backlog, status, getattr(shard_backlog, status) + count)
        if shard_backlog.oldest_submitted_at is None or oldest < shard_backlog.oldest_submitted_at:
            shard_backlog.oldest_submitted_at = oldest
    return backlog


def queued_messages(client: redis.Redis) -> dict[int, int]:
    """{shard: messages waiting in its queue}, in one round trip. A message carries one or more
    jobs (the API queues the jobs of one group commit together)."""
    pipe = client.pipeline(transaction=False)
    for queue in all_queues():
        pipe.llen(queue)
    return dict(enumerate(int(length) for length in pipe.execute()))
