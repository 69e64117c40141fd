"""A worker's background thread that does one thing every few seconds until the worker stops: the
sweep (sweep.py), the expiry scan (expiry.py) and the webhook dispatch (webhooks.py).

A thread of its own, not a timer on Celery's event loop: Celery clears that loop's timers when it
loses the broker connection, and these must go on precisely when the broker misbehaves. A pass
that fails (the database or the broker away) is logged and tried again at the next tick.
"""

import logging
import threading

log = logging.getLogger(__name__)


class PeriodicThread:
    """Subclasses say what one pass does (`run_once`) and what it is called in the logs (`name`)."""

    name = "periodic"

    def __init__(self, interval_seconds: float) -> None:
        self.interval_seconds = interval_seconds
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def run_once(self) -> int:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001  (the database or the broker is away: try again)
                log.warning("%s failed; trying again in %.1f s", self.name, self.interval_seconds,
                            exc_info=True)
            self._stopped.wait(self.interval_seconds)
