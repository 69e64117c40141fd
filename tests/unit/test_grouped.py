"""A grouping thread whose connection turned out dead serves the group again, if it may, and only
the requests not answered yet (api/accept/grouped.py)."""

import asyncio
import queue
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError

from api.accept.grouped import GroupThread, Waiting
from api.problems import ProblemError


@dataclass(eq=False)
class Item(Waiting):
    n: int


class DeadConnectionOnce(GroupThread):
    """Answers item 0, then finds its connection dead; serves fine after that."""

    idle_seconds = 0.01

    def __init__(self, may_retry: bool) -> None:
        self.may_retry = may_retry
        self.served: list[list[int]] = []
        super().__init__("test-group")

    def may_serve_again(self) -> bool:
        return self.may_retry

    def serve(self, group: list[Any]) -> None:
        self.served.append([item.n for item in group])
        if len(self.served) == 1:
            group[0].settle(f"answered {group[0].n} before the failure")
            raise DBAPIError("SELECT 1", {}, Exception("MySQL server has gone away"),
                             connection_invalidated=True)
        for item in group:
            item.settle(f"answered {item.n}")


def run_group(thread: DeadConnectionOnce) -> list[Any]:
    async def main() -> list[Any]:
        items = [Item(n) for n in range(3)]
        # One group for sure: the thread finds all three in its inbox at its next look.
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for item in items:
            inbox.put(item)
        thread._inbox = inbox
        return await asyncio.gather(*(item.future for item in items), return_exceptions=True)

    return asyncio.run(main())


def test_a_group_is_served_again_without_the_requests_already_answered():
    thread = DeadConnectionOnce(may_retry=True)
    assert run_group(thread) == ["answered 0 before the failure", "answered 1", "answered 2"]
    assert thread.served == [[0, 1, 2], [1, 2]]


def test_a_group_that_may_not_be_served_again_gets_503s():
    thread = DeadConnectionOnce(may_retry=False)
    first, *rest = run_group(thread)
    assert first == "answered 0 before the failure"
    assert all(isinstance(r, ProblemError) and r.problem.status == 503 for r in rest), rest
    assert thread.served == [[0, 1, 2]]


class Recorder(GroupThread):
    idle_seconds = 0.01

    def __init__(self, gather_seconds: float) -> None:
        self.gather_seconds = gather_seconds
        self.served: list[list[int]] = []
        super().__init__("test-gather")

    def serve(self, group: list[Any]) -> None:
        self.served.append([item.n for item in group])
        for item in group:
            item.settle(item.n)


def test_a_lone_request_is_served_at_once_and_a_busy_thread_lets_groups_gather():
    thread = Recorder(gather_seconds=0.3)

    async def main() -> float:
        started = time.monotonic()
        await thread.wait_for(Item(0))  # alone: no waiting for company
        alone = time.monotonic() - started
        pair, inbox = [Item(1), Item(2)], queue.SimpleQueue()
        for item in pair:
            inbox.put(item)
        thread._inbox = inbox  # found together at the thread's next look: a group of two
        await asyncio.gather(*(item.future for item in pair))
        # Busy now: the next group waits for company, and a request arriving 50 ms later joins it.
        first = asyncio.ensure_future(thread.wait_for(Item(3)))
        await asyncio.sleep(0.05)
        await asyncio.gather(first, thread.wait_for(Item(4)))
        return alone

    assert asyncio.run(main()) < 0.2
    assert thread.served == [[0], [1, 2], [3, 4]]
