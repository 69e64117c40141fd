"""Clients waiting for their jobs to finish (`Prefer: wait=N`), and what wakes them.

One registry per API process, on its event loop. A waiting request registers the jobs it expects,
then awaits them; it holds no thread, no database connection and no Redis connection of its own:
- one subscription per process to the channel where workers announce finished jobs (with their
  documents, shared/jobs/copies.py) wakes every request waiting for any of them;
- every RECHECK_SECONDS the registry reads, in one query, the jobs that have been waited for longer
  than that, so a waiter is woken even if an announcement was lost (Redis away, or a worker died
  between its commit and its announcement). The embedded profile has no Redis and only rechecks,
  more often.

A request registers before its job can finish (POST) or before it reads the job (GET), so an
announcement cannot slip between the read and the wait. The number of waiting requests is bounded
per process and per API key: past the bound a request is refused (503 or 429 with Retry-After)
before anything is queued.
"""

import asyncio
import json
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

import redis
import redis.asyncio
from starlette.concurrency import run_in_threadpool

from api.problems import ProblemError
from shared.db import get_session_factory
from shared.jobs.documents import read_many_database
from shared.jobs.status import TERMINAL
from shared.problems import Problem
from shared.settings import get_settings
from shared.status_board import get_status_board

log = logging.getLogger(__name__)

RESUBSCRIBE_SECONDS = (0.1, 0.5, 1.0, 2.0)


class Expectation:
    """One request's wait for some jobs; settled by the registry."""

    def __init__(self, owner: str, job_ids: Iterable[str]) -> None:
        self.owner = owner
        self.pending = set(job_ids)
        self.finished: dict[str, dict[str, Any]] = {}
        self.since = time.monotonic()
        self._all_done = asyncio.Event()

    def deliver(self, doc: dict[str, Any]) -> None:
        if doc["job_id"] in self.pending and doc["status"] in TERMINAL:
            self.pending.discard(doc["job_id"])
            self.finished[doc["job_id"]] = doc
            if not self.pending:
                self._all_done.set()

    def forget(self, job_id: str) -> None:
        self.pending.discard(job_id)
        self.finished.pop(job_id, None)
        if not self.pending:
            self._all_done.set()

    async def wait(self, timeout: float) -> dict[str, dict[str, Any]]:
        """The finished jobs, once all are or after `timeout` seconds, whichever comes first."""
        if self.pending:
            try:
                await asyncio.wait_for(self._all_done.wait(), timeout)
            except TimeoutError:
                pass
        return self.finished


class Waiters:
    def __init__(self, *, max_waiting: int, max_waiting_per_key: int, recheck_seconds: float,
                 redis_url: str | None, channel: str | None) -> None:
        self.max_waiting = max_waiting
        self.max_waiting_per_key = max_waiting_per_key
        self.recheck_seconds = recheck_seconds
        self._redis_url = redis_url
        self._channel = channel
        self._by_job: dict[str, list[Expectation]] = {}
        self._waiting = 0
        self._per_key: Counter[str] = Counter()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start listening on the running loop (at start-up, so the subscription is ready)."""
        if self._tasks:
            return
        self._tasks.append(asyncio.create_task(self._recheck_forever(), name="waiters-recheck"))
        if self._redis_url and self._channel:
            self._tasks.append(asyncio.create_task(self._listen_forever(self._redis_url, self._channel),
                                                   name="waiters-listen"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    @asynccontextmanager
    async def expecting(self, owner: str, job_ids: Iterable[str] = ()) -> AsyncIterator[Expectation]:
        """Register a wait for these jobs (more may be added with `add`); refused with a problem
        if the process or the key already has as many waiting requests as allowed."""
        self.start()
        if self._waiting >= self.max_waiting:
            raise _too_many("This API process", self.max_waiting, 503)
        if self._per_key[owner] >= self.max_waiting_per_key:
            raise _too_many("This API key", self.max_waiting_per_key, 429)
        expectation = Expectation(owner, ())
        self._waiting += 1
        self._per_key[owner] += 1
        try:
            self.add(expectation, job_ids)
            yield expectation
        finally:
            self._waiting -= 1
            self._per_key[owner] -= 1
            if not self._per_key[owner]:
                del self._per_key[owner]
            for job_id in [*expectation.pending, *expectation.finished]:
                self._unregister(expectation, job_id)

    def add(self, expectation: Expectation, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            expectation.pending.add(job_id)
            self._by_job.setdefault(job_id, []).append(expectation)

    def replace(self, expectation: Expectation, old: str, new: str) -> None:
        """Wait for `new` instead of `old` (an idempotent replay names another job)."""
        self.forget(expectation, old)
        self.add(expectation, [new])

    def forget(self, expectation: Expectation, job_id: str) -> None:
        """Stop waiting for this job (it does not exist, or is not the caller's to see)."""
        expectation.forget(job_id)
        self._unregister(expectation, job_id)

    def _unregister(self, expectation: Expectation, job_id: str) -> None:
        waiting = self._by_job.get(job_id)
        if waiting and expectation in waiting:
            waiting.remove(expectation)
            if not waiting:
                del self._by_job[job_id]

    def deliver(self, docs: Iterable[dict[str, Any]]) -> None:
        """Wake the requests waiting for any of these finished jobs."""
        for doc in docs:
            for expectation in self._by_job.get(doc.get("job_id", ""), ()):
                expectation.deliver(doc)

    async def _listen_forever(self, redis_url: str, channel: str) -> None:
        # Named, so CLIENT LIST tells the subscriptions of the API processes apart.
        client = redis.asyncio.Redis.from_url(redis_url, socket_connect_timeout=2,
                                              client_name=f"stock-waiters-{os.getpid()}")
        failures = 0
        while True:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(channel)
                failures = 0
                async for message in pubsub.listen():
                    if self._by_job and message["type"] == "message":
                        self.deliver(json.loads(message["data"]))
            except (redis.RedisError, OSError):
                wait = RESUBSCRIBE_SECONDS[min(failures, len(RESUBSCRIBE_SECONDS) - 1)]
                log.warning("lost the subscription to finished jobs; again in %.1f s (waiting "
                            "requests are rechecked in the database meanwhile)", wait,
                            exc_info=failures == 0)
                failures += 1
                await asyncio.sleep(wait)
            finally:
                await pubsub.aclose()

    async def _recheck_forever(self) -> None:
        while True:
            await asyncio.sleep(self.recheck_seconds)
            try:
                await self._recheck()
            except Exception:  # noqa: BLE001  (the database is away: the next round tries again)
                log.warning("could not recheck the waited-for jobs", exc_info=True)

    async def _recheck(self) -> None:
        long_ago = time.monotonic() - self.recheck_seconds
        job_ids = [job_id for job_id, waiting in self._by_job.items()
                   if any(e.since <= long_ago for e in waiting)]
        for start in range(0, len(job_ids), 500):
            docs = await run_in_threadpool(_read_finished, job_ids[start:start + 500])
            self.deliver(docs)


def _read_finished(job_ids: list[str]) -> list[dict[str, Any]]:
    with get_session_factory()() as session:
        return [doc for doc in read_many_database(session, job_ids).values() if doc["status"] in TERMINAL]


def _too_many(who: str, limit: int, status: int) -> ProblemError:
    return ProblemError(
        Problem("too-many-waiting", status, f"{who} already has {limit} requests waiting for jobs; "
                "retry after a second, or poll without Prefer: wait.", {"retry_after": 1}),
        {"Retry-After": "1"})


@lru_cache
def get_waiters() -> Waiters:
    """One per API process (uvicorn forks its workers before the app starts)."""
    settings = get_settings()
    board = get_status_board()
    channel = getattr(board, "channel", None) if board.announces else None
    return Waiters(max_waiting=settings.max_waiting_requests,
                   max_waiting_per_key=settings.max_waiting_requests_per_key,
                   recheck_seconds=1.0 if board.announces else 0.1,
                   redis_url=settings.redis_url if board.announces else None, channel=channel)
