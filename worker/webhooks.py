"""The webhook workers: a Celery task per delivery attempt, and a dispatch thread that turns new
events into deliveries and sends the due ones to the webhooks queue (shared/webhooks/).

They consume the webhooks queue only, apart from the stock workers, so a receiver that is slow or
down never holds up a stock command. Like the sweep, the dispatch loop is a thread of its own
(worker/periodic.py), not a timer on Celery's event loop, which a broker reconnect clears.
"""

import time
from datetime import timedelta

from shared.celery_app import DELIVER_TASK, celery_app, webhooks_queue
from shared.models import utcnow
from shared.settings import get_settings
from shared.transaction import run_in_transaction
from shared.webhooks import dispatch
from shared.webhooks.deliver import deliver
from worker.periodic import PeriodicThread

CLEAN_UP_EVERY_SECONDS = 600.0
# A claim outlives the attempt's own timeout by this much before it counts as lost.
CLAIM_MARGIN_SECONDS = 30.0


@celery_app.task(name=DELIVER_TASK)
def deliver_webhooks(claim: str) -> list[str]:
    """One claim's deliveries, to one receiver (shared/webhooks/deliver.py)."""
    return deliver(claim)


class Dispatcher(PeriodicThread):
    name = "webhook dispatch"

    def __init__(self) -> None:
        super().__init__(get_settings().webhook_dispatch_interval_seconds)
        self._cleaned_at = 0.0

    def run_once(self) -> int:
        """Fan out new events, release lost claims, send the due deliveries; returns how many
        claims it sent."""
        settings = get_settings()
        retries = settings.max_transaction_retries
        while run_in_transaction(lambda s: dispatch.fan_out(s, utcnow()), max_lock_retries=retries,
                                 name="webhook_fan_out") >= dispatch.FAN_OUT_BATCH:
            pass  # catching up: the next batch at once
        run_in_transaction(lambda s: dispatch.release_lost(s, utcnow()), max_lock_retries=retries,
                           name="webhook_claims")
        claim_seconds = settings.webhook_timeout_seconds + CLAIM_MARGIN_SECONDS
        claimed = run_in_transaction(
            lambda s: dispatch.claim_due(s, utcnow(), max_in_flight=settings.webhook_max_in_flight,
                                         claim_seconds=claim_seconds),
            max_lock_retries=retries, name="webhook_claims")
        for claim in claimed:
            celery_app.send_task(DELIVER_TASK, args=[claim], queue=webhooks_queue())
        if time.monotonic() - self._cleaned_at >= CLEAN_UP_EVERY_SECONDS:
            retention = timedelta(days=settings.event_retention_days)
            run_in_transaction(lambda s: dispatch.clean_up(s, utcnow(), retention), max_lock_retries=retries,
                               name="event_clean_up")
            self._cleaned_at = time.monotonic()
        return len(claimed)
