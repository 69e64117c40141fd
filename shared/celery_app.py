"""The Celery app, its delivery guarantees, and how jobs are routed to shard queues."""

import zlib

from celery import Celery

from shared.settings import get_settings

APPLY_TASK = "stock.apply_job"


def shard_for(warehouse_code: str, shard_count: int) -> int:
    """A stable shard per warehouse, so one consumer applies its commands in accepted order."""
    return zlib.crc32(warehouse_code.encode()) % shard_count


def queue_name(shard: int) -> str:
    return f"{get_settings().queue_prefix}.{shard}"


def all_queues() -> list[str]:
    return [queue_name(i) for i in range(get_settings().shard_count)]


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
        # The worker buffers up to APPLY_BATCH_SIZE messages into one transaction, so it must be
        # allowed to hold that many unacked (celery-batches); with concurrency 1 per shard this is it.
        worker_prefetch_multiplier=settings.apply_batch_size,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 3600},
        task_default_queue=queue_name(0),
        worker_hijack_root_logger=False,
    )
    return app


celery_app = make_celery()


def enqueue_job(job_id: str, shard: int) -> None:
    """Publish a job id to its shard queue; raises if the broker does not take it."""
    celery_app.send_task(APPLY_TASK, args=[job_id], queue=queue_name(shard), retry=False)
