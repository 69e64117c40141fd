"""Queue messages for accepted jobs on a thread of their own, a few groups per message.

A job is accepted once its row is committed: the row is the durable promise (a Redis without
persistence, or one that lost its last appends, loses messages), and the worker applies a job from
its message, from its shard's next batch (worker/tasks.py), from its start-up recovery or from its
sweep (worker/sweep.py). So the job writer answers 202 after the
commit and hands the job ids here, and this thread publishes what accumulated over
PUBLISH_INTERVAL_SECONDS as one message per shard queue. Whatever a message carries, the consuming
worker spends about a millisecond of CPU on it in Celery's and kombu's bookkeeping; one message per
group and shard was a tenth of the machine in S2 of bench/load.py, and publishing a few groups
together lifted S2 by about a fifth.

Order: messages go out in commit order, with each shard's jobs in commit order. A publish that fails
is retried, with anything newer appended behind it, until the broker takes it; meanwhile `healthy`
is false and the job writer refuses new jobs (503), so a broker outage costs clients a retry, not a
silent wait. A process that dies with jobs still here leaves them to the sweep.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from shared.celery_app import enqueue_groups
from shared.settings import get_settings

log = logging.getLogger(__name__)

RETRY_SECONDS = (0.1, 0.2, 0.5, 1.0, 2.0)  # then every 2 s while the broker stays away


@dataclass
class Pending:
    """Job ids by shard in commit order, and the request that accepted each (for the worker's logs)."""

    by_shard: dict[int, list[str]] = field(default_factory=dict)
    request_ids: dict[str, str | None] = field(default_factory=dict)

    def add(self, by_shard: dict[int, list[str]], request_ids: dict[str, str | None]) -> None:
        for shard, job_ids in by_shard.items():
            self.by_shard.setdefault(shard, []).extend(job_ids)
        self.request_ids.update(request_ids)


class Publisher:
    def __init__(self, interval_seconds: float,
                 publish: Callable[[dict[int, list[str]], dict[str, str | None]], None] = enqueue_groups
                 ) -> None:
        self.interval_seconds = interval_seconds
        self.healthy = True  # the last publish went through
        self._publish = publish
        self._inbox: queue.SimpleQueue[tuple[dict[int, list[str]], dict[str, str | None]] | threading.Event]
        self._inbox = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="job-publisher", daemon=True)
        self._thread.start()

    def submit(self, by_shard: dict[int, list[str]], request_ids: dict[str, str | None]) -> None:
        """Queue these committed jobs' messages; returns at once."""
        self._inbox.put((by_shard, request_ids))

    def flush(self, timeout: float) -> bool:
        """Publish everything submitted so far (at shutdown); False if that did not happen in time."""
        done = threading.Event()
        self._inbox.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            first = self._inbox.get()
            if self.interval_seconds and not isinstance(first, threading.Event):
                time.sleep(self.interval_seconds)  # let the next groups join this message
            pending, flushed = Pending(), []
            self._take(first, pending, flushed)
            self._take_waiting(pending, flushed)
            self._publish_until_taken(pending, flushed)
            for done in flushed:
                done.set()

    def _take(self, item: object, pending: Pending, flushed: list[threading.Event]) -> None:
        if isinstance(item, threading.Event):
            flushed.append(item)
        else:
            pending.add(*item)  # type: ignore[misc]

    def _take_waiting(self, pending: Pending, flushed: list[threading.Event]) -> None:
        while True:
            try:
                self._take(self._inbox.get_nowait(), pending, flushed)
            except queue.Empty:
                return

    def _publish_until_taken(self, pending: Pending, flushed: list[threading.Event]) -> None:
        attempt = 0
        while pending.by_shard:
            try:
                self._publish(pending.by_shard, pending.request_ids)
            except Exception:  # whatever kombu or redis-py raises, the jobs are committed: retry
                self.healthy = False
                wait = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                log.warning("could not queue %d jobs; retrying in %.1f s",
                            sum(map(len, pending.by_shard.values())), wait, exc_info=attempt == 0)
                attempt += 1
                time.sleep(wait)
                self._take_waiting(pending, flushed)  # newer jobs go behind, in order
                continue
            if not self.healthy:
                log.warning("the broker took the jobs that waited for it")
            self.healthy = True
            return


@lru_cache
def get_publisher() -> Publisher:
    """One per API process, started on first use (after uvicorn has forked its workers)."""
    return Publisher(get_settings().publish_interval_seconds)
