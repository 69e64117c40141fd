"""Many rows in one INSERT, for the apply transaction's biggest writes (the ledger, the events, the
balances).

On MySQL and MariaDB the rows are rendered into the statement as literals: pymysql escapes every
bound value through a chain of Python calls, and with a ledger row, an event and a balance per
stock change that was most of a worker's CPU in a bulk receive (docs/performance.md). The values
here are only None, ints, strings and timestamps, so each kind is rendered directly: strings with
pymysql's escapes (`escape_string`'s table, applied as one `str.replace` per character it
escapes, which is many times quicker on an event's JSON than `str.translate` looking up every
character), or by doubling quotes while the session is in NO_BACKSLASH_ESCAPES mode (as pymysql
itself does), timestamps by pymysql's converter. The statement goes to the DB-API
cursor without parameters, so nothing in it is taken for a placeholder. Elsewhere (SQLite, the
embedded profile) the rows are bound as usual. `text_literal` renders one string the same way, for
the job writer's key-checked INSERT (shared/jobs/rows.py).
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from pymysql.constants import SERVER_STATUS  # type: ignore[import-untyped]
from pymysql.converters import escape_datetime, escape_string  # type: ignore[import-untyped]
from sqlalchemy import Connection, Table, insert

Row = Sequence[Any]


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Row], *,
                update_on_duplicate: Sequence[str] = ()) -> None:
    """INSERT the rows (values in `columns` order); with `update_on_duplicate`, a row whose key
    exists sets those columns instead (MySQL's ON DUPLICATE KEY UPDATE; elsewhere an error)."""
    if not rows:
        return
    if conn.dialect.name not in ("mysql", "mariadb"):
        if update_on_duplicate:
            raise NotImplementedError("update_on_duplicate needs MySQL or MariaDB")
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return
    raw: Any = conn.connection.dbapi_connection
    render = _renderers(table, tuple(columns), conn.dialect, _no_backslash_escapes(raw))
    values = ",".join("(" + ",".join([f(v) for f, v in zip(render, row, strict=True)]) + ")" for row in rows)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values}"
    if update_on_duplicate:
        sql += " ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in update_on_duplicate)
    with raw.cursor() as cursor:
        cursor.execute(sql)  # no parameters: pymysql interpolates nothing


# pymysql's escape table (pymysql.converters.escape_string), the backslash first, so that no
# backslash an escape adds is escaped again.
BACKSLASH_ESCAPES = (("\\", "\\\\"), ("\0", "\\0"), ("\n", "\\n"), ("\r", "\\r"), ("\032", "\\Z"),
                     ('"', '\\"'), ("'", "\\'"))
# Up to this length pymysql's own `escape_string` is the quicker.
SHORT_TEXT = 64


def escape(text: str) -> str:
    """The same as pymysql's `escape_string`."""
    if len(text) <= SHORT_TEXT:
        return str(escape_string(text))
    for plain, escaped in BACKSLASH_ESCAPES:
        if plain in text:
            text = text.replace(plain, escaped)
    return text


def text_literal(conn: Connection, text: str) -> str:
    """The text as a MySQL or MariaDB string literal, for the connection's escaping mode."""
    return _quoting(_no_backslash_escapes(conn.connection.dbapi_connection))(text)


def _no_backslash_escapes(raw: Any) -> bool:
    return bool(raw.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES)


def _quoting(no_backslash_escapes: bool) -> Callable[[str], str]:
    if no_backslash_escapes:
        return lambda text: "'" + text.replace("'", "''") + "'"
    return lambda text: "'" + escape(text) + "'"


# A statement's timestamps are mostly one (the transaction's now, on every ledger and event row):
# pymysql's formatting of it was several % of a bulk receive's worker.
@lru_cache(maxsize=16)
def _datetime_literal(value: datetime) -> str:
    return str(escape_datetime(value))


# Made once per table, columns and mode: finding each column's bind processor again for every
# statement showed in a worker's profile.
@lru_cache(maxsize=64)
def _renderers(table: Table, columns: tuple[str, ...], dialect: Any,
               no_backslash_escapes: bool) -> tuple[Callable[[Any], str], ...]:
    quoted = _quoting(no_backslash_escapes)

    def literal(value: Any) -> str:
        if value is None:
            return "NULL"
        kind = type(value)
        if kind is int:
            return str(value)
        if kind is str:
            return quoted(value)
        if kind is bool:
            return "1" if value else "0"
        if kind is datetime:
            return _datetime_literal(value)
        raise TypeError(f"no literal for a {kind.__name__}")

    def through(process: Callable[[Any], Any]) -> Callable[[Any], str]:
        return lambda value: literal(None if value is None else process(value))

    processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns]
    return tuple(literal if process is None else through(process) for process in processors)

