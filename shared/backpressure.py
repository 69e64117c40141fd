"""How much work waits: queued messages on every shard queue plus messages reserved but not acked."""

import json

import redis

from shared.celery_app import all_queues

# Kombu's Redis transport keeps delivered-but-unacked messages here until the ack, as JSON
# [message, exchange, routing_key]. It holds at most consumers x prefetch entries, so reading it
# whole is cheap, and filtering by routing key ignores other deployments sharing the Redis.
UNACKED_HASH = "unacked"


def queue_depth(client: redis.Redis) -> int:
    """Jobs accepted and not yet finished by a worker, in one round trip."""
    queues = all_queues()
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
    pipe.hvals(UNACKED_HASH)
    *lengths, unacked = pipe.execute()
    return sum(lengths) + sum(1 for entry in unacked if _routing_key(entry) in queues)


def _routing_key(entry: str | bytes) -> str | None:
    try:
        return json.loads(entry)[2]
    except (ValueError, IndexError, TypeError):
        return None
