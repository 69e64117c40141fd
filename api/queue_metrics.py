"""Unfinished jobs, the oldest one's age and waiting messages per shard, computed when Prometheus
scrapes: one indexed query and a few Redis reads (a look at the queue folder in the embedded
profile) every scrape interval, no work on the request path."""

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from shared.db import session_scope
from shared.models import utcnow
from shared.queue_stats import (
    BrokerUnavailable,
    messages_source,
    unfinished_jobs,
    waiting_messages,
    webhook_backlog,
)
from shared.settings import get_settings

log = logging.getLogger(__name__)


class QueueCollector(Collector):
    def _families(self) -> dict[str, GaugeMetricFamily]:
        return {
            "depth": GaugeMetricFamily(
                "stock_queue_depth", "Jobs of a shard accepted and not finished, by state (queued, "
                "running). Their sum over shards is what the 503 high-water mark is compared with.",
                labels=["shard", "state"]),
            "age": GaugeMetricFamily(
                "stock_queue_oldest_job_age_seconds",
                "Age of the shard's oldest queued or running job (0 when none waits).", labels=["shard"]),
            "messages": GaugeMetricFamily(
                "stock_queue_messages", "Messages waiting in the shard's broker queue (each carries "
                "one or more jobs).", labels=["shard"]),
            "undelivered": GaugeMetricFamily(
                "stock_webhook_oldest_undelivered_seconds",
                "Age of the oldest event whose webhook delivery is still to succeed (0 when none)."),
            "unfanned": GaugeMetricFamily(
                "stock_events_waiting_for_fan_out",
                "Events committed and not yet turned into webhook deliveries."),
            "mark": GaugeMetricFamily("stock_queue_high_water_mark",
                                      "MAX_QUEUED_JOBS: over it, command and batch POSTs get 503."),
            "up": GaugeMetricFamily("stock_queue_metrics_up",
                                    "1 if the source (database, and redis or the embedded profile's "
                                    "queue_folder) answered this scrape, else 0.",
                                    labels=["source"]),
        }

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Names only: registering must not touch MySQL or Redis.
        yield from self._families().values()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        settings = get_settings()
        families = self._families()
        families["mark"].add_metric([], settings.max_queued_jobs)
        try:
            with session_scope() as session:
                backlog = unfinished_jobs(session)
            now = utcnow()
            for shard in range(settings.shard_count):
                jobs = backlog.get(shard)
                oldest = jobs.oldest_submitted_at if jobs else None
                families["depth"].add_metric([str(shard), "queued"], jobs.queued if jobs else 0)
                families["depth"].add_metric([str(shard), "running"], jobs.running if jobs else 0)
                families["age"].add_metric([str(shard)], max((now - oldest).total_seconds(), 0.0)
                                           if oldest else 0.0)
            with session_scope() as session:
                oldest, waiting = webhook_backlog(session)
            age = max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
            families["undelivered"].add_metric([], age)
            families["unfanned"].add_metric([], waiting)
            families["up"].add_metric(["database"], 1)
        except SQLAlchemyError:
            log.warning("unfinished jobs unavailable: the database did not answer", exc_info=True)
            families["up"].add_metric(["database"], 0)
        try:
            for shard, messages in waiting_messages().items():
                families["messages"].add_metric([str(shard)], messages)
            families["up"].add_metric([messages_source()], 1)
        except BrokerUnavailable:
            log.warning("queue lengths unavailable: the broker did not answer", exc_info=True)
            families["up"].add_metric([messages_source()], 0)
        yield from families.values()
