"""The registry of waiting requests (api/accept/waiters.py) on its own: what wakes a wait, what
ends it, the bounds, and that nothing is left registered. Its subscription to real Redis and its
database recheck are tested in tests/integration/test_waiters.py."""

import asyncio
import time

import pytest

from api.accept.waiters import Waiters
from api.problems import ProblemError


def _registry(**bounds: int) -> Waiters:
    return Waiters(max_waiting=bounds.get("max_waiting", 100),
                   max_waiting_per_key=bounds.get("max_waiting_per_key", 10),
                   recheck_seconds=3600, redis_url=None, channel=None)


def _done(job_id: str, status: str = "succeeded") -> dict:
    return {"job_id": job_id, "status": status, "owner": 1}


def test_a_wait_ends_when_all_its_jobs_have_ended_not_before():
    async def scenario() -> tuple[dict, float]:
        waiters = _registry()
        async with waiters.expecting("k", ["a", "b"]) as expected:
            loop = asyncio.get_running_loop()
            loop.call_later(0.05, waiters.deliver, [_done("a"), {"job_id": "b", "status": "running"}])
            loop.call_later(0.1, waiters.deliver, [_done("b", "failed"), _done("z")])
            started = time.monotonic()
            finished = await expected.wait(5)
            return finished, time.monotonic() - started

    finished, took = asyncio.run(scenario())
    assert finished == {"a": _done("a"), "b": _done("b", "failed")}
    assert 0.09 < took < 1


def test_a_wait_gives_up_after_its_time_with_what_has_ended():
    async def scenario() -> dict:
        waiters = _registry()
        async with waiters.expecting("k", ["a", "b"]) as expected:
            waiters.deliver([_done("a")])
            return await expected.wait(0.1)

    assert asyncio.run(scenario()) == {"a": _done("a")}


def test_replaced_and_forgotten_jobs_are_not_waited_for_and_nothing_stays_registered():
    async def scenario() -> tuple[dict, Waiters]:
        waiters = _registry()
        async with waiters.expecting("k", ["fresh", "unknown"]) as expected:
            waiters.replace(expected, "fresh", "original")
            waiters.forget(expected, "unknown")
            waiters.deliver([_done("original")])
            finished = await expected.wait(5)
        return finished, waiters

    finished, waiters = asyncio.run(scenario())
    assert finished == {"original": _done("original")}
    assert waiters._by_job == {} and waiters._waiting == 0 and not waiters._per_key


@pytest.mark.parametrize("bounds, status", [({"max_waiting_per_key": 2}, 429), ({"max_waiting": 2}, 503)])
def test_past_the_bound_a_request_is_refused_with_retry_after(bounds: dict, status: int):
    async def scenario() -> ProblemError:
        waiters = _registry(**bounds)
        async with waiters.expecting("k", ["a"]), waiters.expecting("k", ["b"]):
            with pytest.raises(ProblemError) as refused:
                async with waiters.expecting("k", ["c"]):
                    pass
        async with waiters.expecting("k", ["d"]):  # room again once the others ended
            pass
        return refused.value

    refused = asyncio.run(scenario())
    assert refused.problem.status == status and refused.problem.slug == "too-many-waiting"
    assert refused.headers == {"Retry-After": "1"}


def test_other_keys_wait_while_one_key_is_at_its_bound():
    async def scenario() -> None:
        waiters = _registry(max_waiting_per_key=1)
        async with waiters.expecting("k", ["a"]), waiters.expecting("other", ["b"]):
            pass

    asyncio.run(scenario())


def test_a_job_forgotten_after_it_was_announced_is_not_returned():
    """GET /v1/jobs?ids= registers every id before it knows which are the caller's: another key's
    job announced meanwhile must not come back with the caller's."""
    async def scenario() -> dict:
        waiters = _registry()
        async with waiters.expecting("k", ["mine", "theirs"]) as expected:
            waiters.deliver([_done("theirs")])
            waiters.forget(expected, "theirs")
            waiters.deliver([_done("mine")])
            return await expected.wait(1)

    assert asyncio.run(scenario()) == {"mine": _done("mine")}
