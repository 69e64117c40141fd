"""The waiting registry against the real Redis and MySQL: one subscription per process wakes the
waiting requests when a worker announces their jobs; without an announcement (lost, or Redis away)
the database recheck wakes them; the subscription comes back after Redis drops it."""

import asyncio
import os
import time
import uuid

import redis
from sqlalchemy import insert

from api.accept.waiters import Waiters
from shared.db import session_scope
from shared.jobs import copies
from shared.jobs.documents import document
from shared.models import Job, utcnow
from shared.status_board import RedisStatusBoard


def _registry(channel: str, recheck_seconds: float = 3600) -> Waiters:
    return Waiters(max_waiting=100, max_waiting_per_key=10, recheck_seconds=recheck_seconds,
                   redis_url=os.environ["REDIS_URL"], channel=channel)


async def _subscribed(channel: str) -> None:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    deadline = time.monotonic() + 5
    while client.pubsub_numsub(channel)[0][1] < 1:
        assert time.monotonic() < deadline, "the registry never subscribed"
        await asyncio.sleep(0.01)


def test_an_announcement_wakes_every_request_waiting_for_its_jobs():
    channel = copies.done_channel(f"waiters-{uuid.uuid4().hex[:8]}")
    board = RedisStatusBoard.connect(os.environ["REDIS_URL"], 60, channel)
    finished = [document(job_id=str(uuid.uuid4()), kind="command", status="succeeded", owner=1,
                         submitted_at=utcnow()) for _ in range(2)]

    async def scenario() -> tuple[list[dict], float]:
        waiters = _registry(channel)
        waiters.start()
        try:
            await _subscribed(channel)
            async with waiters.expecting("k", [finished[0]["job_id"]]) as one, \
                    waiters.expecting("k", [d["job_id"] for d in finished]) as both:
                asyncio.get_running_loop().call_later(0.05, board.publish_many, finished)
                started = time.monotonic()
                results = await asyncio.gather(one.wait(5), both.wait(5))
                return list(results), time.monotonic() - started
        finally:
            await waiters.stop()

    (one, both), took = asyncio.run(scenario())
    assert one == {finished[0]["job_id"]: finished[0]}
    assert both == {d["job_id"]: d for d in finished}
    assert took < 0.5


def test_without_an_announcement_the_database_recheck_wakes_the_request():
    job_id = str(uuid.uuid4())

    async def scenario() -> tuple[dict, float]:
        waiters = _registry(copies.done_channel(f"silent-{uuid.uuid4().hex[:8]}"), recheck_seconds=0.3)
        waiters.start()
        try:
            async with waiters.expecting("k", [job_id]) as expected:
                with session_scope() as session:  # finished by a worker that died before announcing
                    session.execute(insert(Job), [{
                        "id": job_id, "kind": "command", "status": "failed", "payload": {},
                        "slot": 0, "attempts": 1, "submitted_at": utcnow(), "completed_at": utcnow(),
                        "error": {"type": "/problems/unknown-sku"}}])
                started = time.monotonic()
                finished = await expected.wait(5)
                return finished, time.monotonic() - started
        finally:
            await waiters.stop()

    finished, took = asyncio.run(scenario())
    assert finished[job_id]["status"] == "failed"
    assert finished[job_id]["error"] == {"type": "/problems/unknown-sku"}
    assert took < 0.3 * 2 + 0.5


def test_the_subscription_comes_back_after_redis_drops_it():
    channel = copies.done_channel(f"dropped-{uuid.uuid4().hex[:8]}")
    board = RedisStatusBoard.connect(os.environ["REDIS_URL"], 60, channel)
    job = document(job_id=str(uuid.uuid4()), kind="command", status="failed", owner=1, submitted_at=utcnow())

    async def scenario() -> dict:
        waiters = _registry(channel)
        waiters.start()
        try:
            await _subscribed(channel)
            admin = redis.Redis.from_url(os.environ["REDIS_URL"])
            ours = [client for client in admin.client_list(_type="pubsub")
                    if client.get("name") == f"stock-waiters-{os.getpid()}"]
            assert ours, "the registry's subscription was not found"
            for client in ours:
                admin.client_kill_filter(_id=client["id"])
            await asyncio.sleep(0.2)
            await _subscribed(channel)
            async with waiters.expecting("k", [job["job_id"]]) as expected:
                board.publish_many([job])
                return await expected.wait(5)
        finally:
            await waiters.stop()

    assert asyncio.run(scenario()) == {job["job_id"]: job}
