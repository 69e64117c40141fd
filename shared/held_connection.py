"""A database connection that a thread keeps: autocommitting for its single statements (the API's
grouping threads, `api/accept/grouped.py`: a key lookup, a count, one INSERT for a group's jobs;
the worker's drains, `shared/drain.py`: which slots wait, an attempt counted), or for a thread's
transactions one after another (the drains' apply transactions).

A pooled checkout pings the server (pre-ping) and its return rolls back: two round trips on top of
the statement, and in a busy API process every round trip also waits for the GIL behind the event
loop. A thread does one thing at a time, so it keeps one connection instead, pings it only after it
sat idle, and drops it after any error, so the next use starts on a fresh connection (what pre-ping
did for every checkout).

Autocommitting, each statement is its own transaction, so a write is durable when it returns,
without a COMMIT round trip, and a read needs no ROLLBACK either (the engine skips it,
`shared/db.py`).
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from shared.db import get_engine

# Longer than a busy thread's gaps between groups, far shorter than any server idle timeout.
IDLE_PING_SECONDS = 5.0


class HeldConnection:
    def __init__(self, *, autocommit: bool = True) -> None:
        self.autocommit = autocommit
        self._conn: Connection | None = None
        self._last_used = float("-inf")

    @contextmanager
    def use(self) -> Iterator[Connection]:
        """The connection, autocommitting. SQLAlchemy's own bookkeeping of a transaction is ended
        on the way out (no round trip)."""
        conn = self._connection()
        try:
            yield conn
            if conn.in_transaction():
                conn.rollback()
        except BaseException:
            self.discard()
            raise
        finally:
            self._last_used = time.monotonic()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The connection (not autocommitting) in a transaction that commits when the block ends
        and rolls back if it raises."""
        if self.autocommit:
            raise RuntimeError("an autocommitting connection has no transactions")
        with self.use() as conn, conn.begin():
            yield conn

    def discard(self) -> None:
        """Close the connection for good; the next `use` opens another."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:  # noqa: BLE001  (it is being thrown away)
                pass

    def _connection(self) -> Connection:
        if self._conn is not None and time.monotonic() - self._last_used > IDLE_PING_SECONDS:
            try:
                dbapi = self._conn.connection.dbapi_connection
                if dbapi is None:  # invalidated: as gone as one that fails the ping
                    raise ConnectionError("no DBAPI connection")
                self._conn.dialect.do_ping(dbapi)
            except Exception:  # noqa: BLE001  (whatever the driver raises, the connection is gone)
                self.discard()
        if self._conn is None:
            self._conn = get_engine().connect()
            if self.autocommit:
                self._conn = self._conn.execution_options(isolation_level="AUTOCOMMIT")
        return self._conn
