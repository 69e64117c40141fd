"""Per-shard figures about waiting work, for monitoring: how many jobs each shard has accepted and
not finished (what the 503 high-water mark counts), how old the oldest of them is, and how many
messages wait in its broker queue. Read when scraped, never per request."""

from dataclasses import dataclass
from datetime import datetime

import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.celery_app import all_queues
from shared.models import Job

UNFINISHED = ("queued", "running")


@dataclass
class ShardBacklog:
    queued: int = 0
    running: int = 0
    oldest_submitted_at: datetime | None = None


def unfinished_jobs(session: Session) -> dict[int, ShardBacklog]:
    """{shard: its queued and running jobs}; shards with none are left out. One range scan of the
    (status, shard, submitted_at) index over the unfinished jobs only (at most about
    MAX_QUEUED_JOBS of them, since the API refuses work beyond that)."""
    rows = session.execute(
        select(Job.status, Job.shard, func.count(), func.min(Job.submitted_at))
        .where(Job.status.in_(UNFINISHED)).group_by(Job.status, Job.shard))
    backlog: dict[int, ShardBacklog] = {}
    for status, shard, count, oldest in rows:
        shard_backlog = backlog.setdefault(shard, ShardBacklog())
        setattr(shard_backlog, status, count)
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
