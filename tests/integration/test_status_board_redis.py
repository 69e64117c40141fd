"""The server profile's status board on the real Redis: copies and the announcement of many
finished jobs in one round trip, and what its callers see while Redis is down or hung."""

import json
import os
import socket
import time
import uuid

import pytest
import redis

from shared.jobs import copies as jobs
from shared.status_board import RedisStatusBoard, StatusBoardUnavailable


class CountingRedis(redis.Redis):
    """Counts round trips: single commands and pipeline executions."""

    round_trips = 0

    def execute_command(self, *args, **options):  # type: ignore[no-untyped-def]
        CountingRedis.round_trips += 1
        return super().execute_command(*args, **options)

    def pipeline(self, transaction=True, shard_hint=None):  # type: ignore[no-untyped-def]
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
            CountingRedis.round_trips += 1
            return execute(*args, **kwargs)

        pipe.execute = counted
        return pipe


@pytest.fixture
def client():
    client = CountingRedis.from_url(os.environ["REDIS_URL"], decode_responses=True)
    yield client
    client.close()


def test_publish_many_stores_the_finished_and_announces_them_in_one_round_trip(client):
    channel = jobs.done_channel(f"board-{uuid.uuid4().hex[:8]}")
    board = RedisStatusBoard(client, ttl_seconds=300, channel=channel)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    docs = [{"job_id": ids[0], "status": "queued"}, {"job_id": ids[1], "status": "succeeded"},
            {"job_id": ids[2], "status": "failed"}]
    listener = redis.Redis.from_url(os.environ["REDIS_URL"], decode_responses=True).pubsub()
    listener.subscribe(channel)
    try:
        while listener.get_message(timeout=1) is not None:  # the subscribe confirmation
            pass
        CountingRedis.round_trips = 0
        board.publish_many(docs)
        assert CountingRedis.round_trips == 1
        announced = listener.get_message(timeout=1)
        assert listener.get_message(timeout=0.2) is None, "one announcement for the group"
    finally:
        listener.close()
    assert announced is not None and json.loads(announced["data"]) == docs[1:]
    # Only terminal statuses are copied: a copy is never older than the database.
    assert client.get(jobs.status_key(ids[0])) is None
    for doc in docs[1:]:
        assert json.loads(client.get(jobs.status_key(doc["job_id"]))) == doc
        assert 0 < client.ttl(jobs.status_key(doc["job_id"])) <= 300
    assert jobs.read_copies(client, ids) == {doc["job_id"]: doc for doc in docs[1:]}


def test_without_redis_publishing_says_so():
    down = redis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=1)
    board = RedisStatusBoard(down, ttl_seconds=300, channel="down:jobs-done")
    with pytest.raises(StatusBoardUnavailable):
        board.publish_many([{"job_id": "j", "status": "succeeded"}])
    assert board.readiness() == {"redis": "unreachable"}


def test_a_failed_board_is_skipped_for_a_moment_instead_of_waited_for():
    """A Redis that hangs (accepts connections, never answers) costs one timeout, not one per job."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(100)  # never accepted: the kernel completes the handshake, nobody answers
        board = RedisStatusBoard.connect(f"redis://127.0.0.1:{hung.getsockname()[1]}/0", 300,
                                         "hung:jobs-done")
        started = time.monotonic()
        for _ in range(10):
            with pytest.raises(StatusBoardUnavailable):
                board.publish_many([{"job_id": "j", "status": "succeeded"}])
        assert time.monotonic() - started < 2, "each publish waited out the timeout again"
