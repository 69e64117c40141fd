"""The job store: MySQL holds the truth, Redis an expiring copy for fast polls and wake-ups."""

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis
import redis.asyncio
from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.clock import rfc3339
from shared.models import Job
from shared.stock.apply import JobOutcome

TERMINAL = ("succeeded", "failed", "partially_failed")


def status_key(job_id: str) -> str:
    return f"job:{job_id}"


def done_channel(job_id: str) -> str:
    return f"job-done:{job_id}"


def document(*, job_id: str, kind: str, status: str, owner: int | None, submitted_at: Any,
             started_at: Any = None, completed_at: Any = None, result: Any = None,
             error: Any = None) -> dict[str, Any]:
    """A job as GET /v1/jobs/{id} shows it, plus its owner (stripped before it is shown)."""
    doc: dict[str, Any] = {"job_id": job_id, "kind": kind, "status": status,
                           "submitted_at": rfc3339(submitted_at), "owner": owner}
    for name, value in (("started_at", rfc3339(started_at)), ("completed_at", rfc3339(completed_at)),
                        ("result", result), ("error", error)):
        if value is not None:
            doc[name] = value
    return doc


def from_row(job: Job) -> dict[str, Any]:
    return document(job_id=job.id, kind=job.kind, status=job.status, owner=job.api_key_id,
                    submitted_at=job.submitted_at, started_at=job.started_at,
                    completed_at=job.completed_at, result=job.result, error=job.error)


def from_outcome(outcome: JobOutcome) -> dict[str, Any]:
    return document(job_id=outcome.job_id, kind=outcome.kind, status=outcome.status,
                    owner=outcome.api_key_id, submitted_at=outcome.submitted_at,
                    started_at=outcome.started_at, completed_at=outcome.completed_at,
                    result=outcome.result, error=outcome.error)


def publish_many(client: redis.Redis, docs: list[dict[str, Any]], ttl_seconds: int) -> None:
    """Store the jobs' status copies and wake anyone long-polling the terminal ones, in one round
    trip."""
    pipe = client.pipeline(transaction=False)
    for doc in docs:
        pipe.set(status_key(doc["job_id"]), json.dumps(doc), ex=ttl_seconds)
        if doc["status"] in TERMINAL:
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
    """Redis while it remembers the job; MySQL, the truth, when it does not (or is unreachable)."""
    try:
        cached = client.get(status_key(job_id))
    except redis.RedisError:
        cached = None
    if cached:
        return json.loads(cached)
    return read_database(session, job_id)


def read_database(session: Session, job_id: str) -> dict[str, Any] | None:
    job = session.scalar(select(Job).where(Job.id == job_id))
    return from_row(job) if job else None
