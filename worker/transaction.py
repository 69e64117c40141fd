"""Run a unit of work in a fresh transaction, retrying what the database says is worth retrying."""

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from shared.db import session_scope
from shared.sqlite_engine import is_busy
from worker.metrics import RETRIES, TRANSACTION_SECONDS

log = logging.getLogger(__name__)
T = TypeVar("T")

DEADLOCK, LOCK_WAIT_TIMEOUT = 1213, 1205
LOCK_ERRORS = frozenset({DEADLOCK, LOCK_WAIT_TIMEOUT})
# Server gone, lost, shutting down, or connection killed: wait for the database to come back.
CONNECTION_ERRORS = frozenset({2002, 2003, 2006, 2013, 2055, 1053, 1927, 4031})


def _mysql_code(exc: DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _is_lock_conflict(exc: DBAPIError) -> bool:
    """A deadlock or lock-wait timeout (MySQL), or a busy timeout (SQLite, the embedded profile)."""
    return _mysql_code(exc) in LOCK_ERRORS or is_busy(exc)


def _backoff(attempt: int, cap: float) -> float:
    return min(cap, 0.02 * 2 ** attempt) * (0.5 + random.random() / 2)


def run_in_transaction(work: Callable[[Session], T], *, max_lock_retries: int,
                       outage_deadline_seconds: float = 600.0, name: str = "work") -> T:
    """Commit `work(session)`; on deadlock or lock-wait timeout roll back and run it again, and
    while the database is unreachable keep waiting (up to the deadline) instead of failing jobs.
    `name` labels the transaction's metrics and log lines."""
    lock_attempts = 0
    outage_started: float | None = None
    while True:
        started = time.perf_counter()
        try:
            with session_scope() as session:
                result = work(session)
            TRANSACTION_SECONDS.labels(name, "committed").observe(time.perf_counter() - started)
            return result
        except (OperationalError, DBAPIError) as exc:
            code = _mysql_code(exc)
            if _is_lock_conflict(exc) and lock_attempts < max_lock_retries:
                lock_attempts += 1
                # A SQLite busy timeout (embedded profile) is a lock wait that ran out, too.
                _retrying(name, started, "deadlock" if code == DEADLOCK else "lock_wait")
                log.warning("lock conflict %s, retry %d", code or exc.orig, lock_attempts,
                            extra={"transaction": name, "mysql_error": code})
                time.sleep(_backoff(lock_attempts, 1.0))
                continue
            if code in CONNECTION_ERRORS or exc.connection_invalidated:
                outage_started = outage_started or time.monotonic()
                waited = time.monotonic() - outage_started
                if waited < outage_deadline_seconds:
                    _retrying(name, started, "database_unavailable")
                    log.warning("database unavailable (%s), waited %.0fs", code, waited,
                                extra={"transaction": name, "mysql_error": code})
                    time.sleep(_backoff(int(waited) + 3, 5.0))
                    continue
            TRANSACTION_SECONDS.labels(name, "failed").observe(time.perf_counter() - started)
            raise


def _retrying(name: str, started: float, reason: str) -> None:
    TRANSACTION_SECONDS.labels(name, "retried").observe(time.perf_counter() - started)
    RETRIES.labels(name, reason).inc()
