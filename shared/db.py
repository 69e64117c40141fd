"""Engine and session factory; the caller (request or task) owns each transaction."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from shared.settings import get_settings
from shared.sqlite_engine import create_sqlite_engine


@lru_cache
def get_engine() -> Engine:
    """One pooled engine per process. READ COMMITTED so fresh transactions see others' commits."""
    settings = get_settings()
    if make_url(settings.database_url).get_backend_name() == "sqlite":
        # The embedded profile's database; see shared/sqlite_engine.py.
        return create_sqlite_engine(settings.database_url,
                                    busy_timeout_seconds=settings.lock_wait_timeout_seconds)
    engine = create_engine(
        settings.database_url,
        pool_pre_ping=True,
        pool_recycle=1800,
        # A sync route holds one pooled connection per thread; keep as many as the threadpool has
        # threads, or overflow connections are opened and closed per request under load (each one a
        # TCP and auth handshake, most of a request's cost).
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_overflow,
        isolation_level="READ COMMITTED",
        # The API's grouping threads keep autocommitting connections (shared/held_connection.py): a
        # ROLLBACK there would be a round trip that undoes nothing.
        skip_autocommit_rollback=True,
    )
    if engine.dialect.name in ("mysql", "mariadb"):
        lock_wait = settings.lock_wait_timeout_seconds

        @event.listens_for(engine, "connect")
        def _short_lock_waits(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # A short wait turns a stuck lock into a retryable 1205 instead of a stalled worker.
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {int(lock_wait)}")

    return engine


@lru_cache
def get_session_factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False, autoflush=False)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session whose transaction commits on success and rolls back on any exception."""
    session = get_session_factory()()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def end_idle_transactions_after(engine: Engine, seconds: int) -> None:
    """Have the server end this process's transactions that sit idle for `seconds`: a worker that
    is stopped or cut off while holding slot locks (shared/drain.py) then loses them, instead of
    holding its slots until someone notices. MariaDB ends just the idle transaction's connection
    (idle_transaction_timeout); MySQL has no such setting, so there any connection idle that long
    is closed (wait_timeout), which the pool's pre-ping and the held connections' idle ping
    survive. 0 leaves the server's default; SQLite (one process) has nothing to end."""
    if not seconds or engine.dialect.name not in ("mysql", "mariadb"):
        return

    @event.listens_for(engine, "connect")
    def _idle_timeout(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        variable = ("idle_transaction_timeout" if "MariaDB" in dbapi_connection.get_server_info()
                    else "wait_timeout")
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET SESSION {variable} = {int(seconds)}")


def rows_matched(result: Result[*tuple[Any, ...]]) -> int:
    """The rows an UPDATE, INSERT or DELETE run through a Session matched. Session.execute is typed
    as answering the general Result for any statement; for these it is a CursorResult, which counts."""
    return cast(CursorResult[*tuple[Any, ...]], result).rowcount
