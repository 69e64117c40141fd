"""An expiring copy of each finished job in Redis, for fast polls, and one message per finished
group of jobs that wakes the clients waiting for any of them (api/accept/waiters.py: every API
process keeps one subscription to the channel, however many clients wait).

Only terminal statuses are copied and announced: they never change, so a copy can be missing
(expired, or Redis lost it: the database answers then) but never older than the database."""

import json
from typing import Any

import redis
from sqlalchemy.orm import Session

from shared.jobs.documents import read_database
from shared.jobs.status import TERMINAL


def status_key(job_id: str) -> str:
    return f"job:{job_id}"


def done_channel(queue_prefix: str) -> str:
    """The channel that announces finished jobs: one per installation (its queue prefix)."""
    return f"{queue_prefix}:jobs-done"


def publish_many(client: redis.Redis, docs: list[dict[str, Any]], ttl_seconds: int, channel: str) -> None:
    """Store the finished jobs' copies and announce them, in one round trip."""
    finished = [doc for doc in docs if doc["status"] in TERMINAL]
    if not finished:
        return
    encoded = [json.dumps(doc) for doc in finished]  # once each: the copy and the announcement
    pipe = client.pipeline(transaction=False)
    for doc, text in zip(finished, encoded, strict=True):
        pipe.set(status_key(doc["job_id"]), text, ex=ttl_seconds)
    pipe.publish(channel, "[" + ",".join(encoded) + "]")
    pipe.execute()


def read_copies(client: redis.Redis, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The copies Redis has of these jobs (finished ones only), in one round trip."""
    return {job_id: json.loads(raw) for job_id, raw in zip(job_ids, client.mget(
        [status_key(j) for j in job_ids]), strict=True) if raw}


def read(client: redis.Redis, session: Session, job_id: str) -> dict[str, Any] | None:
    """Redis while it remembers the finished job; the database, the truth, otherwise."""
    try:
        cached = client.get(status_key(job_id))
    except redis.RedisError:
        cached = None
    if cached:
        copy: dict[str, Any] = json.loads(cached)
        return copy
    return read_database(session, job_id)
