"""The worker's /metrics endpoint: the apply path's metrics (shared/apply_metrics.py) of this
process, served on http://WORKER_METRICS_HOST:WORKER_METRICS_PORT/metrics once the worker is ready.
Several workers on one host need a port each (bin/run gives them one). A port already taken is
logged and the worker goes on applying jobs, since stock matters more than its metrics."""

import logging

from celery.signals import worker_ready
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client import multiprocess as prometheus_multiprocess

from shared.settings import get_settings

log = logging.getLogger(__name__)


@worker_ready.connect
def _serve_metrics(**_kwargs) -> None:  # type: ignore[no-untyped-def]
    settings = get_settings()
    port = settings.worker_metrics_port
    if not port:
        return
    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry)
    try:
        start_http_server(port, addr=settings.worker_metrics_host, registry=registry)
    except OSError:
        log.error("could not serve worker metrics on %s:%d", settings.worker_metrics_host, port,
                  exc_info=True)
        return
    log.info("worker metrics on http://%s:%d/metrics", settings.worker_metrics_host, port,
             extra={"metrics_port": port})
