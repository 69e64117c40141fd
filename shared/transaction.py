"""Run database work again when the database says it is worth it (tenacity does the retrying).

Two kinds of failure are retried, each with its own budget:
- a lock conflict (deadlock 1213, lock-wait timeout 1205, SQLite's busy timeout): the work is run
  again at once with a short, growing, jittered backoff, up to `max_lock_retries` times;
- the database out of reach (connection refused, lost or killed): the work waits for it, backing
  off up to 2 s between tries, for up to `outage_deadline_seconds`, instead of failing jobs.
Anything else is raised at once.
"""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_random_exponential

from shared.apply_metrics import RETRIES, TRANSACTION_SECONDS
from shared.db import session_scope
from shared.held_connection import HeldConnection
from shared.sqlite_engine import is_busy

log = logging.getLogger(__name__)
T = TypeVar("T")

DEADLOCK, LOCK_WAIT_TIMEOUT = 1213, 1205
LOCK_ERRORS = frozenset({DEADLOCK, LOCK_WAIT_TIMEOUT})
# Server gone, lost, shutting down, or connection killed: wait for the database to come back.
CONNECTION_ERRORS = frozenset({2002, 2003, 2006, 2013, 2055, 1053, 1927, 4031})

_wait_after_conflict = wait_random_exponential(multiplier=0.02, max=1.0)
_wait_for_database = wait_random_exponential(multiplier=0.5, max=2.0)


def _mysql_code(exc: BaseException) -> int | None:
    args = getattr(getattr(exc, "orig", None), "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _is_lock_conflict(exc: BaseException) -> bool:
    """A deadlock or lock-wait timeout (MySQL), or a busy timeout (SQLite, the embedded profile)."""
    return isinstance(exc, DBAPIError) and (_mysql_code(exc) in LOCK_ERRORS or is_busy(exc))


def _is_outage(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and (_mysql_code(exc) in CONNECTION_ERRORS
                                            or exc.connection_invalidated)


class _Budget:
    """What one piece of work may still retry: lock conflicts by count, an outage by time."""

    def __init__(self, name: str, max_lock_retries: int, outage_deadline_seconds: float) -> None:
        self.name = name
        self.lock_retries_left = max_lock_retries
        self.outage_deadline_seconds = outage_deadline_seconds
        self.outage_started: float | None = None

    def worth_retrying(self, exc: BaseException) -> bool:
        if _is_lock_conflict(exc):
            self.lock_retries_left -= 1
            return self.lock_retries_left >= 0
        if _is_outage(exc):
            self.outage_started = self.outage_started or time.monotonic()
            return time.monotonic() - self.outage_started < self.outage_deadline_seconds
        return False

    def wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return (_wait_after_conflict if exc is not None and _is_lock_conflict(exc)
                else _wait_for_database)(state)

    def before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        code = _mysql_code(exc) if exc is not None else None
        if exc is not None and _is_lock_conflict(exc):
            reason = "deadlock" if code == DEADLOCK else "lock_wait"
            log.warning("lock conflict %s, retry %d", code or exc, state.attempt_number,
                        extra={"transaction": self.name, "mysql_error": code})
        else:
            reason = "database_unavailable"
            waited = time.monotonic() - (self.outage_started or time.monotonic())
            log.warning("database unavailable (%s), waited %.0fs", code, waited,
                        extra={"transaction": self.name, "mysql_error": code})
        RETRIES.labels(self.name, reason).inc()


def with_retries(work: Callable[[], T], *, max_lock_retries: int, outage_deadline_seconds: float = 600.0,
                 name: str = "work") -> T:
    """`work()`, run again while it fails with a lock conflict or an outage, within the budgets."""
    budget = _Budget(name, max_lock_retries, outage_deadline_seconds)
    retrying = Retrying(retry=retry_if_exception(budget.worth_retrying), wait=budget.wait,
                        before_sleep=budget.before_sleep, reraise=True)
    return retrying(work)


def run_in_transaction(work: Callable[[Session], T], *, max_lock_retries: int,
                       outage_deadline_seconds: float = 600.0, name: str = "work") -> T:
    """Commit `work(session)` in a fresh transaction; on a lock conflict or an outage, roll back and
    run it again (see above). `name` labels the transaction's metrics and log lines."""

    def attempt() -> T:
        with session_scope() as session:
            return work(session)

    return with_retries(_timed(attempt, name), max_lock_retries=max_lock_retries,
                        outage_deadline_seconds=outage_deadline_seconds, name=name)


def run_in_held_transaction(work: Callable[[Connection], T], held: HeldConnection, *,
                            max_lock_retries: int, outage_deadline_seconds: float = 600.0,
                            name: str = "work") -> T:
    """As run_in_transaction, on a connection the thread keeps (shared/held_connection.py), for
    Core statements: no pool checkout, so no ping before the transaction and no ROLLBACK after
    its COMMIT, two round trips fewer than a session's."""

    def attempt() -> T:
        with held.transaction() as conn:
            return work(conn)

    return with_retries(_timed(attempt, name), max_lock_retries=max_lock_retries,
                        outage_deadline_seconds=outage_deadline_seconds, name=name)


def _timed(attempt: Callable[[], T], name: str) -> Callable[[], T]:
    def timed() -> T:
        started = time.perf_counter()
        try:
            result = attempt()
        except BaseException:
            TRANSACTION_SECONDS.labels(name, "rolled_back").observe(time.perf_counter() - started)
            raise
        TRANSACTION_SECONDS.labels(name, "committed").observe(time.perf_counter() - started)
        return result

    return timed
