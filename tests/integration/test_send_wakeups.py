"""The API's wake-ups on the real Redis broker: one message per shard queue naming its slots,
sent together through kombu's publish batch (one Redis pipeline)."""

import base64
import json
import time
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


def test_each_shard_gets_one_message_naming_its_slots(queues):
    client, prefix = queues
    before = time.time()
    broker.send_wakeups({0: [4, 2], 1: [7]})

    [on_zero] = _messages(client, f"{prefix}.0")
    [on_one] = _messages(client, f"{prefix}.1")
    args_zero, kwargs_zero, _ = json.loads(base64.b64decode(on_zero["body"]))
    args_one, kwargs_one, _ = json.loads(base64.b64decode(on_one["body"]))
    assert args_zero == [[2, 4]] and args_one == [[7]]
    # When it was sent, after the jobs' commit: a worker drops it if a later drain saw them.
    assert before <= kwargs_zero["sent_at"] == kwargs_one["sent_at"] <= time.time()
    assert on_zero["headers"]["task"] == broker.DRAIN_TASK


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
        broker.send_wakeups({0: [1], 1: [2]})
