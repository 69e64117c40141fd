"""What the API and the worker keep about jobs in flight besides the job rows and the queue: a fast
copy of each job's status, the wake-up a long poll waits for, and, for monitoring, how many messages
wait in each shard's queue.

Two boards, one chosen per process by `get_status_board()`:
- `RedisStatusBoard` (server profile): expiring status copies and pub/sub wake-ups in Redis, message
  counts from the broker's lists. The job rows stay the truth: the board only ever speeds things up.
- `DatabaseStatusBoard` (embedded profile, which has no Redis): the job rows answer everything. A
  long poll re-reads its job a few times a second, which a local SQLite file serves in microseconds;
  waiting messages are the message files in the queue folder.

Backpressure is not the board's: the API's job writer counts unfinished job rows in either profile.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import redis
import redis.asyncio
from sqlalchemy.orm import Session

from shared import file_queue, queue_stats
from shared.celery_app import all_queues
from shared.jobs import copies
from shared.jobs.documents import read_database
from shared.redis_client import get_async_redis, get_redis
from shared.settings import get_settings

log = logging.getLogger(__name__)

IsDone = Callable[[], Awaitable[bool]]


class StatusBoardUnavailable(Exception):
    """The board could not be reached. The job rows still have every status: callers carry on."""


class StatusBoard(Protocol):
    # Names the place `queued_messages` reads, for the `source` label of stock_queue_metrics_up.
    messages_source: str

    def read(self, session: Session, job_id: str) -> dict[str, Any] | None:
        """The job as GET /v1/jobs/{id} shows it (with its owner), or None if there is none."""

    def publish_many(self, docs: list[dict[str, Any]]) -> None:
        """Record finished jobs and wake the long polls waiting for them, all at once; raises
        StatusBoardUnavailable (the database has the statuses, so polls still see them)."""

    async def wait_until_done(self, job_id: str, timeout: float, is_done: IsDone) -> None:
        """Return once `is_done()` may have turned true, or after `timeout` seconds."""

    def queued_messages(self) -> dict[int, int]:
        """{shard: messages waiting in its queue} (a message carries one or more jobs); raises
        StatusBoardUnavailable."""

    def readiness(self) -> dict[str, str]:
        """Checks for /readyz beyond the database: name -> "ok" or "unreachable"."""


class RedisStatusBoard:
    messages_source = "redis"

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds

    def read(self, session: Session, job_id: str) -> dict[str, Any] | None:
        return copies.read(self._client, session, job_id)

    def publish_many(self, docs: list[dict[str, Any]]) -> None:
        try:
            copies.publish_many(self._client, docs, self._ttl_seconds)  # one pipeline round trip
        except redis.RedisError as exc:
            raise StatusBoardUnavailable("Redis is unreachable") from exc

    async def wait_until_done(self, job_id: str, timeout: float, is_done: IsDone) -> None:
        try:
            await copies.wait_until_done(get_async_redis(), job_id, timeout, is_done)
        except redis.RedisError:
            pass  # no wake-up channel: the caller answers with what is known now

    def queued_messages(self) -> dict[int, int]:
        try:
            return queue_stats.queued_messages(self._client)  # the broker's lists, one round trip
        except redis.RedisError as exc:
            raise StatusBoardUnavailable("Redis is unreachable") from exc

    def readiness(self) -> dict[str, str]:
        try:
            self._client.ping()
            return {"redis": "ok"}
        except Exception:
            return {"redis": "unreachable"}


class DatabaseStatusBoard:
    messages_source = "queue_folder"
    # How often a long poll re-reads its job: a finished job is seen within this.
    poll_interval_seconds = 0.1

    def __init__(self, queue_dir: Path) -> None:
        self._queue_dir = queue_dir

    def read(self, session: Session, job_id: str) -> dict[str, Any] | None:
        return read_database(session, job_id)

    def publish_many(self, docs: list[dict[str, Any]]) -> None:
        pass  # the job rows, committed before this is called, are the statuses

    async def wait_until_done(self, job_id: str, timeout: float, is_done: IsDone) -> None:
        deadline = time.monotonic() + timeout
        while not await is_done() and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(self.poll_interval_seconds, left))

    def queued_messages(self) -> dict[int, int]:
        """The message files waiting in the queue folder, counted per shard queue."""
        try:
            return dict(enumerate(file_queue.waiting_messages(self._queue_dir, all_queues())))
        except OSError as exc:
            raise StatusBoardUnavailable(f"the queue folder {self._queue_dir} cannot be read") from exc

    def readiness(self) -> dict[str, str]:
        return {}


@lru_cache
def get_status_board() -> StatusBoard:
    settings = get_settings()
    if settings.uses_redis:
        return RedisStatusBoard(get_redis(), settings.job_status_ttl_seconds)
    return DatabaseStatusBoard(settings.embedded_queue_dir)
