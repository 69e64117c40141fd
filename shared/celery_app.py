"""The Celery app, its delivery guarantees, and how jobs are routed to shard queues."""

from typing import Any
from urllib.parse import urlparse

from celery import Celery

from shared import file_queue
from shared.settings import Settings, get_settings

# A wake-up: "these ordering slots have jobs waiting" (worker/tasks.py, shared/drain.py).
DRAIN_TASK = "stock.drain_slots"
# What the API sent before ordering slots: a list of job ids. Still served, for a rolling upgrade.
LEGACY_APPLY_TASK = "stock.apply_job"
# Wake-ups a worker takes from the broker ahead of the one it runs: they are tiny, and when the
# worker is busy most of them find their jobs already applied by an earlier drain.
PREFETCH_MESSAGES = 16


def queue_name(shard: int) -> str:
    return f"{get_settings().queue_prefix}.{shard}"


def all_queues() -> list[str]:
    return [queue_name(i) for i in range(get_settings().shard_count)]


def _broker_options(settings: Settings) -> dict[str, Any]:
    if urlparse(settings.celery_broker_url).scheme == "filesystem":
        return file_queue.celery_options(settings.embedded_queue_dir)  # the embedded profile
    return {"broker_transport_options": {"visibility_timeout": 3600}}


def make_celery() -> Celery:
    settings = get_settings()
    app = Celery("stock", broker=settings.celery_broker_url)
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
        task_default_queue=queue_name(0),
        worker_hijack_root_logger=False,
        **_broker_options(settings),
    )
    return app


celery_app = make_celery()


def send_wakeups(slots_by_shard: dict[int, list[int]]) -> None:
    """Send each shard queue one wake-up naming its slots with new jobs, all in one broker round
    trip (kombu's publish batch: one Redis pipeline). Raises if the broker does not take them;
    then none of them is sent, or (past kombu's batch size) only some: the jobs are committed, and
    the caller sends again."""
    with celery_app.producer_or_acquire() as producer, producer.batch():
        for shard, slots in slots_by_shard.items():
            celery_app.send_task(DRAIN_TASK, args=[sorted(slots)], queue=queue_name(shard), retry=False,
                                 producer=producer)
