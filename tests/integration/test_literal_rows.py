"""Rows rendered as literals into one INSERT (shared/literal_rows.py) read back exactly as they
were given, whatever the strings hold, on real MariaDB; and the same call binds them on SQLite
(the embedded profile)."""

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import JSON, BigInteger, Column, MetaData, String, Table, create_engine, event, select
from sqlalchemy.orm import Session

from shared.literal_rows import insert_rows
from shared.models import Timestamp
from shared.settings import get_settings

AWKWARD = ["it's", 'say "hi"', "back\\slash", "50% and %s and %%", "line\nbreak\ttab\r", "nul\x00byte",
           "ünïcødé ✓ 𝄞", "", "'; DROP TABLE job; --", "\\'", "?", ":name", "\x1a"]
AWKWARD.append("|".join(AWKWARD))  # past SHORT_TEXT: escaped the other way


def _table(name: str) -> Table:
    return Table(name, MetaData(), Column("id", BigInteger, primary_key=True, autoincrement=False),
                 Column("text", String(200)), Column("number", BigInteger), Column("at", Timestamp),
                 Column("doc", JSON))


@pytest.fixture(params=["mariadb", "mariadb NO_BACKSLASH_ESCAPES", "sqlite"])
def session(request) -> Iterator[tuple[Session, Table]]:  # type: ignore[no-untyped-def]
    url = get_settings().database_url if request.param.startswith("mariadb") else "sqlite://"
    engine = create_engine(url)
    if request.param.endswith("NO_BACKSLASH_ESCAPES"):
        @event.listens_for(engine, "connect")
        def _mode(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
    table = _table(f"literal_rows_{uuid.uuid4().hex[:8]}")
    table.create(engine)
    try:
        with Session(engine) as session:
            yield session, table
    finally:
        table.drop(engine)
        engine.dispose()


def test_rows_read_back_as_they_were_given(session):
    session, table = session
    conn = session.connection()
    at = datetime(2026, 12, 1, 23, 59, 58, 123456)
    rows = [(n, text, -(2 ** 62) + n if n % 2 else None, at if n % 3 else None,
             {"text": text, "n": n} if n % 2 == 0 else None)
            for n, text in enumerate([*AWKWARD, None])]
    insert_rows(conn, table, ("id", "text", "number", "at", "doc"), rows)
    session.commit()
    assert [tuple(r) for r in session.execute(select(table).order_by(table.c.id))] == rows


def test_update_on_duplicate_sets_only_the_named_columns(session):
    session, table = session
    conn = session.connection()
    if session.get_bind().dialect.name == "sqlite":
        with pytest.raises(NotImplementedError):
            insert_rows(conn, table, ("id", "text"), [(1, "a")], update_on_duplicate=("text",))
        return
    insert_rows(conn, table, ("id", "text", "number"), [(1, "first", 10), (2, "second", 20)])
    insert_rows(conn, table, ("id", "text", "number"), [(1, "it's new", 11), (3, "third", 30)],
                update_on_duplicate=("text",))
    session.commit()
    assert session.execute(select(table.c.id, table.c.text, table.c.number).order_by(table.c.id)).all() == [
        (1, "it's new", 10), (2, "second", 20), (3, "third", 30)]


# Only where rows are rendered: SQLite's driver binds them.
@pytest.mark.parametrize("session", ["mariadb", "mariadb NO_BACKSLASH_ESCAPES"], indirect=True)
def test_a_value_of_another_kind_is_refused_before_anything_is_sent(session):
    session, table = session
    conn = session.connection()
    with pytest.raises(TypeError):
        insert_rows(conn, table, ("id", "number"), [(1, 2.5)])
    assert session.execute(select(table)).all() == []
