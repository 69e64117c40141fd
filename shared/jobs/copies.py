"""An expiring copy of each finished job in Redis, for fast polls, and the wake-up of the clients
waiting for it. Only terminal statuses are copied: they never change, so a copy can be missing
(expired, or Redis lost it: the database answers then) but never older than the database."""

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio
from sqlalchemy.orm import Session

from shared.jobs.documents import read_database
from shared.jobs.status import TERMINAL


def status_key(job_id: str) -> str:
    return f"job:{job_id}"


def done_channel(job_id: str) -> str:
    return f"job-done:{job_id}"


def publish_many(client: redis.Redis, docs: list[dict[str, Any]], ttl_seconds: int) -> None:
    """Store the finished jobs' copies and wake anyone waiting for them, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for doc in docs:
        if doc["status"] not in TERMINAL:
            continue
        pipe.set(status_key(doc["job_id"]), json.dumps(doc), ex=ttl_seconds)
        pipe.publish(done_channel(doc["job_id"]), doc["status"])
    pipe.execute()


async def wait_until_done(client: redis.asyncio.Redis, job_id: str, timeout: float,
                          is_done: Callable[[], Awaitable[bool]]) -> None:
    """Wait for the job's done message or `timeout`, without polling the database. `is_done` is
    checked once after subscribing, so a job that finished just before is not missed."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        await pubsub.subscribe(done_channel(job_id))
        if await is_done():
            return
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if await pubsub.get_message(timeout=left) is not None:
                return
    finally:
        await pubsub.aclose()


def read(client: redis.Redis, session: Session, job_id: str) -> dict[str, Any] | None:
    """Redis while it remembers the finished job; the database, the truth, otherwise."""
    try:
        cached = client.get(status_key(job_id))
    except redis.RedisError:
        cached = None
    if cached:
        return json.loads(cached)
    return read_database(session, job_id)
