"""The SQLite engine of the embedded profile: WAL, a busy timeout, and write locks taken at BEGIN.

SQLite has one writer at a time and no row locks (`SELECT ... FOR UPDATE` compiles to a plain
SELECT). Every transaction therefore starts with `BEGIN IMMEDIATE`, which takes the database's write
lock up front and waits up to the busy timeout for it. That serialises the apply transaction exactly
as the row locks do on MySQL, and it also covers the API's read-then-write transactions (idempotency
check, then insert): with a deferred BEGIN, such a transaction fails at once with SQLITE_BUSY when
another process committed after its first read, instead of waiting its turn. Readers queue behind
a writer for a few milliseconds; for the profile's purpose (trying the service) that is the right
trade for never seeing "database is locked" under normal use.
"""

import sqlite3
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

# Primary result codes (the low byte of an extended code such as SQLITE_BUSY_SNAPSHOT).
SQLITE_BUSY, SQLITE_LOCKED = 5, 6


def create_sqlite_engine(url: str | URL, *, busy_timeout_seconds: float) -> Engine:
    engine = create_engine(url, connect_args={"timeout": busy_timeout_seconds})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Autocommit at the driver level, so that the BEGIN below is the only one (pysqlite would
        # otherwise issue its own deferred BEGIN before the first write).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL: readers do not block the writer and a commit is one append, not a journal rewrite.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
        # The schema's foreign keys hold on MySQL; SQLite enforces them only when asked.
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # An autocommitting connection (the API's grouping threads) runs each statement alone.
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_busy(exc: DBAPIError) -> bool:
    """SQLite gave up waiting for the write lock: worth retrying, like a MySQL lock-wait timeout."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return isinstance(exc.orig, sqlite3.OperationalError) and code is not None and \
        code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
