"""How many wake-ups wait in each shard queue, read from the real brokers: Redis lists (one round
trip) and RabbitMQ quorum queues (passive declares)."""

import os
import uuid

import redis
from kombu import Connection, Exchange, Queue

from shared.queue_stats import rabbitmq_lengths, redis_lengths

RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def test_redis_lengths_are_the_lengths_of_the_shard_lists():
    # Lists of their own: the session's workers consume the run's real shard queues.
    first, second = (f"count-{uuid.uuid4().hex[:8]}.{n}" for n in range(2))
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        client.rpush(first, "m1", "m2")
        client.rpush(second, "m3")
        assert redis_lengths(os.environ["REDIS_URL"], [first, second, f"{second}-never"]) == [2, 1, 0]
    finally:
        client.delete(first, second)


def test_rabbitmq_lengths_count_ready_messages_and_a_queue_never_declared_holds_none():
    first, second = (f"count-{uuid.uuid4().hex[:8]}.{n}" for n in range(2))
    queues = [Queue(name, Exchange(name), routing_key=name, queue_arguments={"x-queue-type": "quorum"})
              for name in (first, second)]
    with Connection(RABBITMQ_URL) as connection:
        producer = connection.Producer()
        try:
            for queue, count in zip(queues, (2, 1), strict=True):
                for _ in range(count):
                    producer.publish({"args": [[1]]}, exchange=queue.exchange, routing_key=queue.name,
                                     declare=[queue], serializer="json")
            assert rabbitmq_lengths(RABBITMQ_URL, [first, second, f"{second}-never"]) == [2, 1, 0]
        finally:
            for queue in queues:
                queue(connection.default_channel).delete()
