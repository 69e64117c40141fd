"""The API's Prometheus metrics and their exposition at /metrics.

`uvicorn --workers N` runs N processes, and a scrape reaches one of them. With
PROMETHEUS_MULTIPROC_DIR set (bin/run and docker-compose set it, to a directory emptied at start),
each process writes its counters to memory-mapped files there and /metrics adds up every process's
files; an increment stays a memory write, with no I/O on the request path. Without it (a single
process, as in-process tests run) the ordinary per-process registry is served.

The queue's depth and age are not counted here but read when scraped (api/queue_metrics.py).
"""

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

from api.queue_metrics import QueueCollector

REQUESTS = Counter("stock_http_requests_total", "HTTP requests answered, by route template and status.",
                   ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "stock_http_request_duration_seconds", "Time to answer an HTTP request, by route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
ACCEPTED = Counter("stock_commands_accepted_total",
                   "Jobs accepted (202) and queued, by kind (command or batch); replays not counted.",
                   ["kind"])
REJECTED = Counter("stock_commands_rejected_total",
                   "Command and batch submissions refused, by kind and reason (the problem type: "
                   "overloaded, rate-limited, validation-error, ...).", ["kind", "reason"])

REFUSED_CONNECTIONS = Counter(
    "stock_http_connections_refused_total",
    "Requests the HTTP server refused before the app saw them, by reason (headers-too-large, "
    "too-many-headers, header-timeout, too-many-connections).", ["reason"])

# The routes that submit work, and the kind of job each submits.
SUBMIT_ROUTES = {"/v1/commands": "command", "/v1/batches": "batch"}


# The series alerts watch exist from the start, at 0, so rate() over them is defined at once.
for _kind in SUBMIT_ROUTES.values():
    ACCEPTED.labels(_kind)
    for _reason in ("overloaded", "unavailable", "rate-limited", "validation-error"):
        REJECTED.labels(_kind, _reason)


def count_accepted(kind: str) -> None:
    ACCEPTED.labels(kind).inc()


def count_rejection(method: str, path: str, reason: str) -> None:
    """Called where a problem is answered; counts it when it refuses a command or a batch."""
    kind = SUBMIT_ROUTES.get(path)
    if kind is not None and method == "POST":
        REJECTED.labels(kind, reason).inc()


def count_refused_connection(reason: str) -> None:
    REFUSED_CONNECTIONS.labels(reason).inc()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


_queue_collector = QueueCollector()
if multiprocess_dir() is None:
    REGISTRY.register(_queue_collector)


def exposition() -> tuple[bytes, str]:
    """The metrics text of every API process (or of this one) plus the queue's, and its media type."""
    if multiprocess_dir() is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    prometheus_multiprocess.MultiProcessCollector(registry)
    registry.register(_queue_collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_exiting() -> None:
    """Let the files of a process that is gone stop counting as live (uvicorn has no child-exit
    hook, so each process does it on its own shutdown)."""
    if multiprocess_dir() is not None:
        prometheus_multiprocess.mark_process_dead(os.getpid())
