"""Send the workers' wake-ups for committed jobs, on a thread of their own.

A job is accepted once its row is committed: the row is the durable promise, and the message
only says "these ordering slots have new jobs" (shared/drain.py applies whatever waits there, in
accepted order). So the job writer answers 202 after the commit and hands the jobs' slots here.

No timer: while the thread is idle, a wake-up goes out at once; while it is publishing, what
arrives meanwhile is merged and goes out with the next publish, one message per shard queue. A
publish that fails is retried with anything newer merged in, until the broker takes it;
meanwhile `healthy` is false and the job writer refuses new jobs (503), so a broker outage costs
clients a retry, not a silent wait. A wake-up lost anyway (the process died with it here, or the
broker lost it) leaves its jobs to the workers' sweep.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable
from functools import lru_cache

from shared.celery_app import send_wakeups

log = logging.getLogger(__name__)

RETRY_SECONDS = (0.1, 0.2, 0.5, 1.0, 2.0)  # then every 2 s while the broker stays away

SlotsByShard = dict[int, set[int]]


class Publisher:
    def __init__(self, publish: Callable[[dict[int, list[int]]], None] = send_wakeups) -> None:
        self.healthy = True  # the last publish went through
        self._publish = publish
        self._inbox: queue.SimpleQueue[SlotsByShard | threading.Event] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="job-publisher", daemon=True)
        self._thread.start()

    def submit(self, slots_by_shard: SlotsByShard) -> None:
        """Wake the workers for these committed jobs' slots; returns at once."""
        self._inbox.put(slots_by_shard)

    def flush(self, timeout: float) -> bool:
        """Publish everything submitted so far (at shutdown); False if that did not happen in time."""
        done = threading.Event()
        self._inbox.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            pending: SlotsByShard = {}
            flushed: list[threading.Event] = []
            self._take(self._inbox.get(), pending, flushed)
            self._take_waiting(pending, flushed)
            self._publish_until_taken(pending, flushed)
            for done in flushed:
                done.set()

    @staticmethod
    def _take(item: SlotsByShard | threading.Event, pending: SlotsByShard,
              flushed: list[threading.Event]) -> None:
        if isinstance(item, threading.Event):
            flushed.append(item)
            return
        for shard, slots in item.items():
            pending.setdefault(shard, set()).update(slots)

    def _take_waiting(self, pending: SlotsByShard, flushed: list[threading.Event]) -> None:
        while True:
            try:
                self._take(self._inbox.get_nowait(), pending, flushed)
            except queue.Empty:
                return

    def _publish_until_taken(self, pending: SlotsByShard, flushed: list[threading.Event]) -> None:
        attempt = 0
        while pending:
            try:
                self._publish({shard: sorted(slots) for shard, slots in pending.items()})
            except Exception:  # whatever kombu or redis-py raises, the jobs are committed: retry
                self.healthy = False
                wait = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
                log.warning("could not send wake-ups for %d slots; retrying in %.1f s",
                            sum(map(len, pending.values())), wait, exc_info=attempt == 0)
                attempt += 1
                time.sleep(wait)
                self._take_waiting(pending, flushed)  # newer jobs' slots join the retry
                continue
            if not self.healthy:
                log.warning("the broker took the wake-ups that waited for it")
            self.healthy = True
            return


@lru_cache
def get_publisher() -> Publisher:
    """One per API process, started on first use (after uvicorn has forked its workers)."""
    return Publisher()
