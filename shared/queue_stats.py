"""Per-shard figures about waiting work, for monitoring: how many jobs each shard has accepted and
not finished (what the 503 high-water mark counts), how old the oldest of them is, and how many
messages wait in its broker queue. Read when scraped, never per request."""

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import amqp
import redis
from amqp.exceptions import AMQPError, NotFound
from amqp.protocol import queue_declare_ok_t
from kombu import Connection
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared import file_queue
from shared.celery_app import all_queues, broker_kind
from shared.jobs.status import UNFINISHED
from shared.models import Event, EventSequence, Job, WebhookDelivery, WebhookDispatch
from shared.ordering import shard_for_slot
from shared.settings import get_settings


@dataclass
class ShardBacklog:
    queued: int = 0
    running: int = 0
    oldest_submitted_at: datetime | None = None


def unfinished_jobs(session: Session) -> dict[int, ShardBacklog]:
    """{shard: its queued and running jobs}, by the queue their slots' wake-ups go to today;
    shards with none are left out. One range scan of the (status, slot, submitted_at) index over
    the unfinished jobs only (at most about MAX_QUEUED_JOBS of them, since the API refuses work
    beyond that)."""
    shard_count = get_settings().shard_count
    rows = session.execute(
        select(Job.status, Job.slot, func.count(), func.min(Job.submitted_at))
        .where(Job.status.in_(UNFINISHED)).group_by(Job.status, Job.slot))
    backlog: dict[int, ShardBacklog] = {}
    for status, slot, count, oldest in rows:
        shard_backlog = backlog.setdefault(shard_for_slot(slot, shard_count), ShardBacklog())
        setattr(shard_backlog, status, getattr(shard_backlog, status) + count)
        if shard_backlog.oldest_submitted_at is None or oldest < shard_backlog.oldest_submitted_at:
            shard_backlog.oldest_submitted_at = oldest
    return backlog


def webhook_backlog(session: Session) -> tuple[datetime | None, int]:
    """(when the oldest event still to be delivered happened, how many events wait for the fan-out):
    an index walk of the undelivered deliveries, and two one-row reads."""
    oldest_position = session.scalar(
        select(func.min(WebhookDelivery.event_position))
        .where(WebhookDelivery.status.in_(("pending", "delivering"))))
    oldest = session.scalar(select(Event.created_at).where(Event.position == oldest_position)) \
        if oldest_position is not None else None
    head = session.scalar(select(EventSequence.last_position).where(EventSequence.id == 1)) or 0
    fanned = session.scalar(select(WebhookDispatch.last_position).where(WebhookDispatch.id == 1)) or 0
    return oldest, max(head - fanned, 0)


class BrokerUnavailable(Exception):
    """The broker (or the queue folder) could not be read."""


def messages_source() -> str:
    """What `waiting_messages` reads, for the `source` label of stock_queue_metrics_up."""
    kind = broker_kind()
    return "queue_folder" if kind == "folder" else kind


def waiting_messages() -> dict[int, int]:
    """{shard: wake-ups waiting in its queue}. A wake-up a worker has taken but not acknowledged
    is not counted. Raises BrokerUnavailable."""
    kind, settings, queues = broker_kind(), get_settings(), all_queues()
    try:
        if kind == "redis":
            counts = redis_lengths(settings.celery_broker_url, queues)
        elif kind == "rabbitmq":
            counts = rabbitmq_lengths(settings.celery_broker_url, queues)
        else:
            counts = file_queue.waiting_messages(settings.embedded_queue_dir, queues)
    except (redis.RedisError, OSError, AMQPError) as exc:
        raise BrokerUnavailable(f"the {kind} broker did not answer") from exc
    return dict(enumerate(counts))


def redis_lengths(url: str, queues: list[str]) -> list[int]:
    """The lengths of the queues' lists, in one round trip."""
    with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
        return [int(length) for length in pipe.execute()]


def rabbitmq_lengths(url: str, queues: list[str]) -> list[int]:
    """Each queue's ready messages, from a passive declare (a queue that no worker or publisher
    declared yet holds none)."""
    lengths: list[int] = []
    with Connection(url, connect_timeout=2) as connection:
        for queue in queues:
            # kombu's stubs type channel() as the base StdChannel, and py-amqp's stubs type
            # queue_declare() as a bare tuple: an amqp:// connection hands out py-amqp channels,
            # whose queue_declare answers a queue_declare_ok_t.
            channel = cast(amqp.Channel, connection.channel())
            try:
                declared = cast(queue_declare_ok_t, channel.queue_declare(queue=queue, passive=True))
                lengths.append(declared.message_count)
            except NotFound:
                lengths.append(0)  # NOT_FOUND closes the channel: a fresh one per queue
            finally:
                with contextlib.suppress(Exception):
                    channel.close()
    return lengths
