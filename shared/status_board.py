"""What the API and the worker keep about jobs besides the job rows and the queue: a fast copy of
each finished job, and the announcement that wakes the clients waiting for it.

Two boards, one chosen per process by `get_status_board()`:
- `RedisStatusBoard` (server profile): expiring copies of finished jobs and one pub/sub channel
  announcing them (shared/jobs/copies.py). The job rows stay
  the truth: the board only ever speeds things up, and a board that cannot be reached is skipped
  for a moment rather than waited for.
- `DatabaseStatusBoard` (embedded profile, which has no Redis): the job rows answer everything, and
  waiting clients are woken by re-reading them (api/accept/waiters.py).

Backpressure is not the board's: the API's job writer counts unfinished job rows in either profile.
"""

import logging
import time
from functools import lru_cache
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.orm import Session

from shared.jobs import copies
from shared.jobs.documents import read_database, read_many_database
from shared.redis_client import bounded_pool
from shared.settings import get_settings

log = logging.getLogger(__name__)

# A board that failed is not asked again for this long: a drain or a poll must not wait out a
# timeout per job while Redis is away or hung.
SKIP_AFTER_FAILURE_SECONDS = 5.0


class StatusBoardUnavailable(Exception):
    """The board could not be reached. The job rows still have every status: callers carry on."""


class StatusBoard(Protocol):
    # Whether finished jobs are announced on a channel (else waiting clients re-read the rows).
    announces: bool

    def read(self, session: Session, job_id: str) -> dict[str, Any] | None:
        """The job as GET /v1/jobs/{id} shows it (with its owner), or None if there is none."""

    def read_many(self, session: Session, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The jobs among these that exist, by id, as `read` gives them."""

    def publish_many(self, docs: list[dict[str, Any]]) -> None:
        """Record finished jobs and announce them, all at once; raises StatusBoardUnavailable (the
        database has the statuses, so polls and waiting clients still see them)."""

    def readiness(self) -> dict[str, str]:
        """Checks for /readyz beyond the database: name -> "ok" or "unreachable"."""


class RedisStatusBoard:
    announces = True

    def __init__(self, client: redis.Redis, ttl_seconds: int, channel: str) -> None:
        self._client = client
        self._ttl_seconds = ttl_seconds
        self.channel = channel
        self._skip_until = 0.0

    @classmethod
    def connect(cls, url: str, ttl_seconds: int, channel: str) -> "RedisStatusBoard":
        """A board on its own client: short timeouts and no retries of its own (redis-py's
        default retries made a hung Redis cost six seconds a call), since the database answers
        whatever the board cannot."""
        pool = bounded_pool(url, decode_responses=True, socket_timeout=1, socket_connect_timeout=0.5,
                            health_check_interval=30, retry=Retry(NoBackoff(), 0))
        client = redis.Redis(connection_pool=pool)
        return cls(client, ttl_seconds, channel)

    def read(self, session: Session, job_id: str) -> dict[str, Any] | None:
        if self._skipping():
            return read_database(session, job_id)
        return copies.read(self._client, session, job_id)

    def read_many(self, session: Session, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if not self._skipping():
            try:
                found = copies.read_copies(self._client, job_ids)
            except redis.RedisError:
                self._failed()
        missing = [j for j in job_ids if j not in found]
        return {**found, **(read_many_database(session, missing) if missing else {})}

    def publish_many(self, docs: list[dict[str, Any]]) -> None:
        if self._skipping():
            raise StatusBoardUnavailable("Redis failed a moment ago")
        try:
            copies.publish_many(self._client, docs, self._ttl_seconds, self.channel)
        except redis.RedisError as exc:
            self._failed()
            raise StatusBoardUnavailable("Redis is unreachable") from exc

    def readiness(self) -> dict[str, str]:
        try:
            self._client.ping()
            return {"redis": "ok"}
        except Exception:
            return {"redis": "unreachable"}

    def _skipping(self) -> bool:
        return time.monotonic() < self._skip_until

    def _failed(self) -> None:
        self._skip_until = time.monotonic() + SKIP_AFTER_FAILURE_SECONDS


class DatabaseStatusBoard:
    announces = False

    def read(self, session: Session, job_id: str) -> dict[str, Any] | None:
        return read_database(session, job_id)

    def read_many(self, session: Session, job_ids: list[str]) -> dict[str, dict[str, Any]]:
        return read_many_database(session, job_ids)

    def publish_many(self, docs: list[dict[str, Any]]) -> None:
        pass  # the job rows, committed before this is called, are the statuses

    def readiness(self) -> dict[str, str]:
        return {}


@lru_cache
def get_status_board() -> StatusBoard:
    settings = get_settings()
    if settings.uses_redis:
        return RedisStatusBoard.connect(settings.redis_url, settings.job_status_ttl_seconds,
                                        copies.done_channel(settings.queue_prefix))
    return DatabaseStatusBoard()
