"""Write many rows in one statement: stock balances, job outcomes and accepted jobs. The one
dialect-specific corner of the apply and accept paths."""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, update
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Session

from shared.models import Job, StockLevel
from shared.stock.planning import Balance, Key


def _upsert_levels_statement() -> Any:
    stmt = mysql.insert(StockLevel.__table__)
    return stmt.on_duplicate_key_update(on_hand=stmt.inserted.on_hand, version=stmt.inserted.version,
                                        updated_at=stmt.inserted.updated_at)


# Built once: building it (its `inserted` columns) for every batch cost more than running it.
_UPSERT_LEVELS = _upsert_levels_statement()


def upsert_levels(session: Session, balances: dict[int, tuple[Key, Balance]], now: datetime) -> None:
    """Set on_hand and version of existing levels, given as level id -> (key, balance)."""
    if not balances:
        return
    rows = [{"level_id": level_id, "warehouse_id": key[0], "product_id": key[1],
             "on_hand": b.on_hand, "version": b.version}
            for level_id, (key, b) in sorted(balances.items())]
    if session.get_bind().dialect.name in ("mysql", "mariadb"):
        # One multi-row statement instead of a round trip per level. The rows exist and are locked,
        # so this always takes the UPDATE branch.
        session.execute(_UPSERT_LEVELS, [{"id": r["level_id"], "warehouse_id": r["warehouse_id"],
                                "product_id": r["product_id"],
                                "on_hand": r["on_hand"], "version": r["version"],
                                "updated_at": now} for r in rows])
        return
    session.execute(
        update(StockLevel.__table__).where(StockLevel.__table__.c.id == bindparam("level_id"))
        .values(on_hand=bindparam("on_hand"), version=bindparam("version"), updated_at=now),
        rows)


def set_job_outcomes(session: Session, outcomes: list[tuple[str, str, Any, Any]], now: datetime) -> None:
    """Finish jobs, given as (job id, status, result, error), with one `UPDATE ... CASE id`.

    Written as driver SQL: built as an expression, a CASE with a branch per job is compiled afresh
    for every batch size, and building and compiling it was half of the worker's CPU."""
    conn = session.connection()
    mark = _mark(conn.dialect)
    case = "CASE id " + " ".join([f"WHEN {mark} THEN {mark}"] * len(outcomes)) + " END"
    ids = [job_id for job_id, _, _, _ in outcomes]

    def when_then(values: list[Any]) -> list[Any]:
        return [param for job_id, value in zip(ids, values, strict=True) for param in (job_id, value)]

    statuses = [status for _, status, _, _ in outcomes]
    results = [_json_text(result) for _, _, result, _ in outcomes]
    errors = [_json_text(error) for _, _, _, error in outcomes]
    completed_at = _timestamp(conn.dialect)(now)
    conn.exec_driver_sql(
        f"UPDATE job SET status = {case}, result = {case}, error = {case}, completed_at = {mark}, "
        f"started_at = COALESCE(started_at, {mark}) WHERE id IN ({', '.join([mark] * len(ids))})",
        (*when_then(statuses), *when_then(results), *when_then(errors), completed_at, completed_at,
         *ids))


_JOB_COLUMNS = ("id", "kind", "mode", "status", "payload", "shard", "attempts", "api_key_id",
                "idempotency_key", "request_hash", "submitted_at")


def insert_jobs(conn: Connection, rows: list[dict[str, Any]],
                live_key: Sequence[bool] | None = None) -> int:
    """Insert accepted jobs, given as column -> value, with one statement; returns how many rows
    it wrote. Where `live_key` is true for a row, the row is written only if its api_key_id names
    a key that is not revoked at that moment: the job writer checks a key it has seen before
    without reading it again (api/job_writer.py), and this makes a revocation count from the very
    next INSERT. Driver SQL: built as an expression, SQLAlchemy spent more CPU preparing a group's
    rows than the database spent inserting them, on the API's job writer thread."""
    mark, timestamp = _mark(conn.dialect), _timestamp(conn.dialect)
    values = [(r["id"], r["kind"], r["mode"], r["status"], json.dumps(r["payload"]), r["shard"],
               r["attempts"], r["api_key_id"], r["idempotency_key"], r["request_hash"],
               timestamp(r["submitted_at"])) for r in rows]
    columns = ", ".join(_JOB_COLUMNS)
    if not live_key or not any(live_key):
        # One statement, not executemany: the driver may split that into several, and on an
        # autocommitting connection each part would commit on its own.
        row_marks = "(" + ", ".join([mark] * len(_JOB_COLUMNS)) + ")"
        conn.exec_driver_sql(f"INSERT INTO job ({columns}) VALUES {', '.join([row_marks] * len(rows))}",
                             tuple(param for row in values for param in row))
        return len(rows)
    key_at = _JOB_COLUMNS.index("api_key_id")
    checked = [(*row, row[key_at] if check else None) for row, check in zip(values, live_key, strict=True)]
    if conn.dialect.name == "sqlite":  # the embedded profile
        return _insert_where_live_as_union(conn, checked)
    # MySQL and MariaDB: the rows as one JSON document read back as a table (JSON_TABLE). A
    # derived table of one SELECT per row, the spelling SQLite shares, cost the database so much
    # more to parse that S2 of bench/load.py ran a fifth slower with it.
    document = json.dumps([{name: value.isoformat(" ") if isinstance(value, datetime) else value
                            for name, value in zip((*_JOB_COLUMNS, "live_key"), row, strict=True)
                            if value is not None} for row in checked])
    return conn.exec_driver_sql(_INSERT_WHERE_LIVE, (document,)).rowcount


# A row is written if no key is to be checked for it, or if that key is not revoked.
_WHERE_LIVE = ("WHERE {rows}.live_key IS NULL OR EXISTS "
               "(SELECT 1 FROM api_key AS k WHERE k.id = {rows}.live_key AND k.revoked_at IS NULL)")
# Absent members (None above) read as NULL in MySQL and MariaDB alike.
_INSERT_WHERE_LIVE = (
    f"INSERT INTO job ({', '.join(_JOB_COLUMNS)}) SELECT {', '.join(f'j.{c}' for c in _JOB_COLUMNS)} "
    "FROM JSON_TABLE(%s, '$[*]' COLUMNS ("
    "id VARCHAR(36) PATH '$.id', kind VARCHAR(16) PATH '$.kind', mode VARCHAR(16) PATH '$.mode', "
    "status VARCHAR(24) PATH '$.status', payload LONGTEXT PATH '$.payload', shard INT PATH '$.shard', "
    "attempts INT PATH '$.attempts', api_key_id BIGINT PATH '$.api_key_id', "
    "idempotency_key VARCHAR(255) PATH '$.idempotency_key', request_hash VARCHAR(64) PATH '$.request_hash', "
    "submitted_at DATETIME(6) PATH '$.submitted_at', live_key BIGINT PATH '$.live_key')) AS j "
    + _WHERE_LIVE.format(rows="j"))


def _insert_where_live_as_union(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """The rows as a derived table, UNION ALL of one-row SELECTs, each with the key to find live or
    NULL, filtered in the same statement."""
    mark, columns = _mark(conn.dialect), ", ".join(_JOB_COLUMNS)
    first = "SELECT " + ", ".join(f"{mark} AS {name}" for name in (*_JOB_COLUMNS, "live_key"))
    more = " UNION ALL SELECT " + ", ".join([mark] * (len(_JOB_COLUMNS) + 1))
    result = conn.exec_driver_sql(
        f"INSERT INTO job ({columns}) SELECT {columns} FROM ({first}{more * (len(rows) - 1)}) AS v "
        + _WHERE_LIVE.format(rows="v"),
        tuple(param for row in rows for param in row))
    return result.rowcount


def _mark(dialect: Dialect) -> str:
    """The driver's parameter marker: pymysql's %s, sqlite3's ? (the embedded profile)."""
    return "?" if dialect.paramstyle == "qmark" else "%s"


def _timestamp(dialect: Dialect) -> Any:
    """What the Timestamp columns' type does to a datetime before the driver sees it."""
    process = Job.__table__.c.submitted_at.type.dialect_impl(dialect).bind_processor(dialect)
    return process or (lambda value: value)


def _json_text(value: Any) -> str | None:
    """What SQLAlchemy's JSON type would send for a value; None is SQL NULL, not the text 'null'."""
    return None if value is None else json.dumps(value)
