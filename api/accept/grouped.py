"""Serving concurrent requests in groups on one thread: the requests that arrive while the thread
is busy are served together with one round trip (group commit for writes, one IN query for reads).
Under no load a group is one request, and nothing waits for company.

A request puts its item in the inbox and awaits it on its own event loop; the thread settles each
item with a result or an exception. Used by the job writer and the API-key lookup.
"""

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError

from api.problems import unavailable
from shared.held_connection import HeldConnection

log = logging.getLogger(__name__)


def _settle(future: asyncio.Future[Any], outcome: Any) -> None:
    if future.done():  # the client went away, or the item was settled already
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


@dataclass(eq=False)
class Waiting:
    """A request's place in a group; made on the request's event loop."""

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop, repr=False,
                                            kw_only=True)
    future: asyncio.Future[Any] = field(init=False, repr=False)
    settled: bool = field(default=False, init=False, repr=False)  # by the serving thread

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()

    def settle(self, outcome: Any) -> None:
        """A result, or an exception to raise in the request; thread-safe, first one wins."""
        self.settled = True
        self.loop.call_soon_threadsafe(_settle, self.future, outcome)


class GroupThread:
    """One daemon thread per process serving `serve(group)`; subclasses say what a group does."""

    max_group = 500
    idle_seconds: float | None = None  # how often `idle()` runs while nothing arrives
    # While requests come in groups, wait this long after a group's first request before serving
    # it: fewer, larger groups cost less CPU per request, which on a busy machine more than pays for
    # the wait. Alone, a request is served at once.
    gather_seconds = 0.0

    def __init__(self, name: str) -> None:
        self.connection = HeldConnection()  # the thread's own, from group to group
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    async def wait_for(self, item: Waiting) -> Any:
        self._inbox.put(item)
        return await item.future

    def requeue(self, item: Waiting) -> None:
        """Serve an item again with the next group."""
        self._inbox.put(item)

    def serve(self, group: list[Any]) -> None:
        raise NotImplementedError

    def idle(self) -> None:
        pass

    def may_serve_again(self) -> bool:
        """Whether the group just failed can be served again on a new connection: the thread's
        connection was found dead (a database restart, a killed connection) before the group wrote
        anything. Subclasses that write say when that is."""
        return False

    def _run(self) -> None:
        busy = False  # the last group had company
        while True:
            try:
                first = self._inbox.get(timeout=self.idle_seconds)
            except queue.Empty:
                self.idle()
                continue
            if busy and self.gather_seconds:
                time.sleep(self.gather_seconds)  # let the group grow: see gather_seconds
            group = [first]
            while len(group) < self.max_group:
                try:
                    group.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            busy = len(group) > 1
            try:
                self._serve_once_more_if_the_connection_died(group)
            except Exception as exc:  # the thread must outlive any one group
                log.exception("%s: serving %d requests failed", self._thread.name, len(group))
                failure = unavailable("database") if isinstance(exc, DBAPIError) else exc
                for item in group:
                    item.settle(failure)

    def _serve_once_more_if_the_connection_died(self, group: list[Any]) -> None:
        try:
            self.serve(group)
        except DBAPIError as exc:
            if not (exc.connection_invalidated and self.may_serve_again()):
                raise
            unsettled = [item for item in group if not item.settled]
            log.warning("%s: the database connection was gone; serving %d requests again on a new one",
                        self._thread.name, len(unsettled))
            self.serve(unsettled)
