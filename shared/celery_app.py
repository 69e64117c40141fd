"""The Celery app, its delivery guarantees, and how jobs are routed to shard queues."""

from typing import Any
from urllib.parse import urlparse

from celery import Celery

from shared import file_queue
from shared.settings import Settings, get_settings

APPLY_TASK = "stock.apply_job"


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
        # The worker buffers up to APPLY_BATCH_SIZE messages into one transaction, so it must be
        # allowed to hold that many unacked (celery-batches); with one process per shard this is it.
        worker_prefetch_multiplier=settings.apply_batch_size,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        task_default_queue=queue_name(0),
        worker_hijack_root_logger=False,
        **_broker_options(settings),
    )
    return app


celery_app = make_celery()


def enqueue_groups(by_shard: dict[int, list[str]], request_ids: dict[str, str | None] | None = None) -> None:
    """Publish each shard's job ids, in accepted order, to its queue as one message, all in one
    broker round trip (kombu's publish batch: one Redis pipeline). The API accepts jobs in groups:
    one message per group and shard keeps the broker off the per-command cost. Raises if the broker
    does not take them; then none of them is queued, or (past kombu's batch size) only a prefix
    of the shards is. The ids of the requests that accepted the jobs ride along in a header, for
    the worker's log lines."""
    named = {job_id: rid for job_id, rid in (request_ids or {}).items() if rid}
    with celery_app.producer_or_acquire() as producer, producer.batch():
        for shard, job_ids in by_shard.items():
            headers = {"request_ids": {i: named[i] for i in job_ids if i in named}} if named else None
            # argsrepr: the worker's logs name the jobs one by one; a repr of every id list
            # here cost more than the rest of the message.
            celery_app.send_task(APPLY_TASK, args=[job_ids], queue=queue_name(shard), retry=False,
                                 headers=headers, producer=producer, argsrepr=f"[{len(job_ids)} jobs]")
