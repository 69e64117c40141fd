"""The Celery app, its delivery guarantees, and the shard queues the workers' wake-ups go to.

Three brokers, by BROKER_URL's scheme (docs/operations.md says when to choose which):
- `redis://`: lists in Redis; with append-only persistence a restart keeps the queue;
- `amqp://` (RabbitMQ): quorum queues (replicated and durable), publisher confirms, and no global
  QoS (quorum queues refuse it; Celery turns it off when it finds them);
- `filesystem://` (the embedded profile): a folder, shared/file_queue.py.
Whatever the broker, a wake-up only says "look at these slots": order and exactly-once come from
the database (shared/drain.py), and a wake-up the broker loses costs a sweep, not a job.
"""

import time
from typing import Any, Self
from urllib.parse import urlparse

from celery import Celery
from celery.app.amqp import AMQP
from kombu import Connection

from shared import file_queue
from shared.settings import Settings, get_settings

# A wake-up: "these ordering slots have jobs waiting" (worker/tasks.py, shared/drain.py).
DRAIN_TASK = "stock.drain_slots"
# What the API sent before ordering slots: a list of job ids. Still served, for a rolling upgrade.
LEGACY_APPLY_TASK = "stock.apply_job"
# One attempt at one webhook delivery (worker/webhooks.py), on the webhooks queue.
DELIVER_TASK = "stock.deliver_webhook"
# Wake-ups a worker takes from the broker ahead of the one it runs: they are tiny, and when the
# worker is busy most of them find their jobs already applied by an earlier drain.
PREFETCH_MESSAGES = 16
# Longest a worker waits between its attempts to reach a broker that went away.
RECONNECT_SECONDS = 1.0


def queue_name(shard: int) -> str:
    return f"{get_settings().queue_prefix}.{shard}"


def all_queues() -> list[str]:
    """The shard queues: the stock commands' wake-ups."""
    return [queue_name(i) for i in range(get_settings().shard_count)]


def webhooks_queue() -> str:
    """The webhook deliveries' queue, consumed by workers of their own (shared/webhooks/)."""
    return f"{get_settings().queue_prefix}.webhooks"


AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")


def broker_kind(settings: Settings | None = None) -> str:
    """`redis`, `rabbitmq` or `folder`: which broker BROKER_URL names."""
    scheme = urlparse((settings or get_settings()).celery_broker_url).scheme
    return "folder" if scheme == "filesystem" else "rabbitmq" if scheme in AMQP_SCHEMES else "redis"


# How long a publish tries to (re)connect to the broker before it raises. kombu's default is
# Celery's broker_connection_timeout (4 s) plus its retry intervals: about 6 s, during which the
# API's publisher could not see that a restarted broker was back (docs/faults.md).
_PUBLISH_CONNECT = {"connect_retries_timeout": RECONNECT_SECONDS}


def _broker_options(settings: Settings) -> dict[str, Any]:
    kind = broker_kind(settings)
    if kind == "folder":
        return file_queue.celery_options(settings.embedded_queue_dir)  # the embedded profile
    if kind == "rabbitmq":
        return {
            # Every queue a worker consumes or a wake-up is sent to is declared as a quorum queue,
            # by both sides alike (a queue declared twice with other arguments is refused).
            "task_default_queue_type": "quorum",
            # The broker confirms each publish once the queue's majority has it: a 202's wake-up
            # is either on disk in the cluster or the publish raises and is retried.
            "broker_transport_options": {"confirm_publish": True, **_PUBLISH_CONNECT},
            # A worker cut off from the broker is noticed within two heartbeats; its unacked
            # wake-ups go back to the queue for another worker.
            "broker_heartbeat": 10,
        }
    return {"broker_transport_options": {"visibility_timeout": 3600, **_PUBLISH_CONNECT}}


class _PromptConnection(Connection):
    """A broker connection that, once lost, is tried again every RECONNECT_SECONDS at most.

    Celery's consumer asks kombu to reconnect with kombu's default intervals, 2 s longer after each
    failed try up to 30 s (Celery has no setting for them), so after an outage of a minute a worker
    could go on waiting half a minute after the broker was back, leaving new commands to the sweep.
    """

    def ensure_connection(self, *args: Any, **kwargs: Any) -> Self:
        kwargs.setdefault("interval_start", RECONNECT_SECONDS / 4)
        kwargs.setdefault("interval_step", RECONNECT_SECONDS / 4)
        kwargs.setdefault("interval_max", RECONNECT_SECONDS)
        return super().ensure_connection(*args, **kwargs)


class _PromptAMQP(AMQP):
    Connection = _PromptConnection


def make_celery() -> Celery:
    settings = get_settings()
    app = Celery("stock", broker=settings.celery_broker_url, amqp=_PromptAMQP)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # job status is ours (MySQL + Redis), not Celery's result backend
        # At-least-once: ack after the task ran, requeue when the worker process dies.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=PREFETCH_MESSAGES,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        # A worker keeps trying to reach the broker for as long as it is away, never gives up and
        # exits: meanwhile its sweep goes on applying from the database.
        broker_connection_max_retries=None,
        task_default_queue=queue_name(0),
        worker_hijack_root_logger=False,
        **_broker_options(settings),
    )
    return app


celery_app = make_celery()


def send_wakeups(slots_by_shard: dict[int, list[int]]) -> None:
    """Send each shard queue one wake-up naming its slots with new jobs, on Redis in one round trip
    (kombu's publish batch: one pipeline), on RabbitMQ one confirmed publish per queue. Raises if
    the broker does not take them;
    then none of them is sent, or (past kombu's batch size) only some: the jobs are committed, and
    the caller sends again."""
    sent_at = time.time()  # after the jobs' commit: a worker drops it if a later drain saw them
    with celery_app.producer_or_acquire() as producer, producer.batch():
        for shard, slots in slots_by_shard.items():
            args, kwargs = [sorted(slots)], {"sent_at": sent_at}
            # The reprs made here with plain repr(): Celery's saferepr of these ints was a tenth of
            # the API's CPU for a wake-up.
            celery_app.send_task(DRAIN_TASK, args=args, kwargs=kwargs, argsrepr=repr(args),
                                 kwargsrepr=repr(kwargs), queue=queue_name(shard), retry=False,
                                 producer=producer)
