"""Apply the jobs that no wake-up is bringing: a thread in every worker, independent of the broker.

A job is committed before its wake-up message is sent, so a job can be left waiting with no
message on its way: Redis lost it (restarted without persistence, or crashed within its last
second of appends), the API process died just after the commit, or the worker that took the
message died or hung before applying it. So every SWEEP_INTERVAL_SECONDS each worker looks for
slots with a job waiting longer than SWEEP_AFTER_SECONDS, and drains them like a wake-up would
(shared/drain.py): in accepted order, skipping slots another worker holds, so order and
exactly-once hold whoever applies a job.

It is a thread of its own (worker/periodic.py) rather than a timer on Celery's event loop: Celery
clears that loop's timers when it loses the broker connection (`hub.timer.clear()`), and a sweep that must run
precisely when the broker misbehaved cannot depend on it. It also starts a worker's life: jobs left
by a worker that died are older than SWEEP_AFTER_SECONDS by the time anyone restarts it.
"""

import logging
from datetime import timedelta

from shared.apply_metrics import SWEPT
from shared.drain import drain
from shared.held_connection import HeldConnection
from shared.jobs.rows import slots_waiting_since
from shared.models import utcnow
from shared.settings import get_settings
from worker.periodic import PeriodicThread

log = logging.getLogger(__name__)


class Sweeper(PeriodicThread):
    name = "the sweep"

    def __init__(self, interval_seconds: float, after_seconds: float) -> None:
        super().__init__(interval_seconds)
        self.after_seconds = after_seconds
        self._connection = HeldConnection()

    def run_once(self) -> int:
        """Drain the slots with jobs waiting too long; returns how many jobs it applied."""
        with self._connection.use() as conn:
            slots = slots_waiting_since(conn, utcnow() - timedelta(seconds=self.after_seconds))
        if not slots:
            return 0
        applied = [o for o in drain(slots) if not o.already_applied]
        if applied:
            log.warning("the sweep applied %d job(s) that waited over %.0f s", len(applied),
                        self.after_seconds, extra={"slots": slots[:20]})
            SWEPT.labels("sweep").inc(len(applied))
        return len(applied)


def start_sweeper() -> Sweeper:
    settings = get_settings()
    sweeper = Sweeper(settings.sweep_interval_seconds, settings.sweep_after_seconds)
    sweeper.start()
    return sweeper
