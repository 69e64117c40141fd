"""Worker entry point: `celery -A worker.app worker -Q stock.0`."""

from shared.celery_app import celery_app
from worker import recovery, tasks  # noqa: F401  (registers the tasks and signal handlers)

app = celery_app
