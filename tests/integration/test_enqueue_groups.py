"""The API's publish on the real Redis broker: a group's jobs become one message per shard queue,
sent together through kombu's publish batch (one Redis pipeline)."""

import base64
import json
import uuid

import pytest
import redis

from shared import celery_app as broker
from shared.settings import get_settings


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch):
    """Shard queue names no worker of the test session consumes, so the messages stay put."""
    prefix = f"enqueue-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(broker, "queue_name", lambda shard: f"{prefix}.{shard}")
    client = redis.Redis.from_url(get_settings().celery_broker_url)
    yield client, prefix
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


def _messages(client: redis.Redis, queue: str) -> list[dict]:
    return [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]  # LPUSH: newest first


def test_each_shard_gets_one_message_with_its_jobs_in_order(queues):
    client, prefix = queues
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    broker.enqueue_groups({0: [first, third], 1: [second]},
                          {first: "req-1", second: "req-2", third: None})

    [on_zero] = _messages(client, f"{prefix}.0")
    [on_one] = _messages(client, f"{prefix}.1")
    args_zero, _, _ = json.loads(base64.b64decode(on_zero["body"]))
    args_one, _, _ = json.loads(base64.b64decode(on_one["body"]))
    assert args_zero == [[first, third]] and args_one == [[second]]
    assert on_zero["headers"]["task"] == broker.APPLY_TASK
    # Each message names only its own jobs' requests, and only those that had one.
    assert on_zero["headers"]["request_ids"] == {first: "req-1"}
    assert on_one["headers"]["request_ids"] == {second: "req-2"}


def test_the_broker_takes_the_shards_messages_in_one_pipeline():
    """kombu falls back to one round trip per message, silently, if the broker connection retries
    (a retried pipeline could queue a message twice); keep the settings that allow batching."""
    with broker.celery_app.producer_or_acquire() as producer:
        assert producer.supports_batch_publish


def test_a_broker_that_is_down_raises(monkeypatch: pytest.MonkeyPatch):
    """The writer takes the group's jobs back when this raises (tests/e2e/test_outages.py)."""
    unreachable = broker.Celery("down", broker="redis://127.0.0.1:1/0")
    unreachable.conf.broker_connection_retry = False
    monkeypatch.setattr(broker, "celery_app", unreachable)
    with pytest.raises(Exception):  # noqa: B017  (kombu raises its connection errors as they come)
        broker.enqueue_groups({0: [str(uuid.uuid4())], 1: [str(uuid.uuid4())]})
