"""Every write of a job row, and the reads that pick the next work: accept (one INSERT for a group
of jobs), attempt, finish (one UPDATE for a transaction's jobs). Driver SQL where the statement runs
for every group or transaction: built as expressions, SQLAlchemy spent more CPU preparing them than
the database spent running them."""

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Dialect, bindparam, func, select, update
from sqlalchemy.orm import Session

from shared.jobs.status import QUEUED, RUNNING, UNFINISHED
from shared.literal_rows import text_literal
from shared.models import Job

_JOB_COLUMNS = ("id", "kind", "mode", "status", "payload", "slot", "line_count", "attempts", "api_key_id",
                "idempotency_key", "request_hash", "request_id", "submitted_at")


def new_row(*, job_id: str, kind: str, mode: str | None, payload: Any, slot: int, line_count: int,
            api_key_id: int | None, idempotency_key: str | None, request_hash: str | None,
            request_id: str | None, submitted_at: datetime) -> dict[str, Any]:
    """An accepted job's row, as `insert_jobs` takes it."""
    return {"id": job_id, "kind": kind, "mode": mode, "status": QUEUED, "payload": payload,
            "slot": slot, "line_count": line_count, "attempts": 0, "api_key_id": api_key_id,
            "idempotency_key": idempotency_key, "request_hash": request_hash,
            "request_id": request_id, "submitted_at": submitted_at}


def insert_jobs(conn: Connection, rows: list[dict[str, Any]],
                live_key: Sequence[bool] | None = None) -> int:
    """Insert accepted jobs (rows from `new_row`) with one statement; returns how many rows it
    wrote. Where `live_key` is true for a row, the row is written only if its api_key_id names a key
    that is not revoked at that moment: the API checks a key it has seen before without reading it
    again, and this makes a revocation count from the very next INSERT."""
    mark, timestamp = _mark(conn.dialect), _timestamp(conn.dialect)
    values = [tuple(json.dumps(r[c]) if c == "payload" else timestamp(r[c]) if c == "submitted_at"
                    else r[c] for c in _JOB_COLUMNS) for r in rows]
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
    # derived table of one SELECT per row, the spelling SQLite shares, cost the database far more
    # to parse (docs/performance.md).
    document = json.dumps([{name: value.isoformat(" ") if isinstance(value, datetime) else value
                            for name, value in zip((*_JOB_COLUMNS, "live_key"), row, strict=True)
                            if value is not None} for row in checked])
    # The document as a literal: pymysql escapes a parameter a character at a time (literal_rows.py).
    statement = _INSERT_WHERE_LIVE.replace("%s", text_literal(conn, document), 1)
    return conn.exec_driver_sql(statement, execution_options={"no_parameters": True}).rowcount


# A row is written if no key is to be checked for it, or if that key is not revoked.
_WHERE_LIVE = ("WHERE {rows}.live_key IS NULL OR EXISTS "
               "(SELECT 1 FROM api_key AS k WHERE k.id = {rows}.live_key AND k.revoked_at IS NULL)")
# Absent members (None above) read as NULL in MySQL and MariaDB alike.
_INSERT_WHERE_LIVE = (
    f"INSERT INTO job ({', '.join(_JOB_COLUMNS)}) SELECT {', '.join(f'j.{c}' for c in _JOB_COLUMNS)} "
    "FROM JSON_TABLE(%s, '$[*]' COLUMNS ("
    "id VARCHAR(36) PATH '$.id', kind VARCHAR(16) PATH '$.kind', mode VARCHAR(16) PATH '$.mode', "
    "status VARCHAR(24) PATH '$.status', payload LONGTEXT PATH '$.payload', slot INT PATH '$.slot', "
    "line_count INT PATH '$.line_count', attempts INT PATH '$.attempts', "
    "api_key_id BIGINT PATH '$.api_key_id', "
    "idempotency_key VARCHAR(255) PATH '$.idempotency_key', request_hash VARCHAR(64) PATH '$.request_hash', "
    "request_id VARCHAR(128) PATH '$.request_id', "
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


_job = Job.__table__.c
# Built once: only the bound lists change from transaction to transaction.
_MARK_ATTEMPT = (update(Job.__table__)
                 .where(_job.id.in_(bindparam("ids", expanding=True)), _job.status.in_(UNFINISHED))
                 .values(status=RUNNING, attempts=_job.attempts + 1,
                         started_at=func.coalesce(_job.started_at,
                                                  bindparam("now", type_=_job.started_at.type))))


def mark_attempt(conn: Connection | Session, job_ids: Sequence[str], now: datetime) -> None:
    """Count an attempt on these jobs before applying them, so a job that keeps killing workers is
    given up after MAX_JOB_ATTEMPTS; they show as `running` meanwhile."""
    conn.execute(_MARK_ATTEMPT, {"ids": list(job_ids), "now": now})


def set_job_outcomes(conn: Connection, outcomes: list[tuple[str, str, Any, Any]], now: datetime) -> None:
    """Finish jobs, given as (job id, status, result, error), with one `UPDATE ... CASE id`: a
    statement per job was most of a transaction's time, and built as an expression the CASE was
    compiled afresh for every batch size."""
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


_WAITING_SLOTS = select(_job.slot).distinct().where(_job.status.in_(UNFINISHED))
_PENDING_SLOTS = _WAITING_SLOTS.where(_job.slot.in_(bindparam("slots", expanding=True)))


def slots_with_unfinished(conn: Connection | Session, slots: Iterable[int] | None = None) -> list[int]:
    """Which of these slots (None: of all) have jobs waiting: a walk of the job index's unfinished
    entries, which the API's high-water mark keeps to MAX_QUEUED_JOBS at most."""
    if slots is None:
        return sorted(conn.execute(_WAITING_SLOTS).scalars())
    return sorted(conn.execute(_PENDING_SLOTS, {"slots": sorted(set(slots))}).scalars())


_OLDEST_WAITING = (select(_job.id, _job.slot, _job.line_count)
                   .where(_job.status.in_(UNFINISHED), _job.slot.in_(bindparam("slots", expanding=True)))
                   .order_by(_job.submitted_at, _job.id).limit(bindparam("most")))


class WaitingJob(NamedTuple):
    id: str
    slot: int
    line_count: int


def oldest_waiting(conn: Connection, slots: Sequence[int], *, max_jobs: int) -> list[WaitingJob]:
    """The oldest unfinished jobs of these slots, at most `max_jobs`, in accepted order."""
    rows = conn.execute(_OLDEST_WAITING, {"slots": list(slots), "most": max_jobs})
    return [WaitingJob(*row) for row in rows]


_STALE_SLOTS = (select(_job.slot).distinct()
                .where(_job.status.in_(UNFINISHED), _job.submitted_at < bindparam("before")))


def slots_waiting_since(conn: Connection | Session, before: datetime) -> list[int]:
    """The slots with a job accepted before `before` and still unfinished."""
    return sorted(conn.execute(_STALE_SLOTS, {"before": before}).scalars())


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
