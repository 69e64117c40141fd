"""The one place stock changes: apply queued jobs inside the caller's transaction.

Locks the job rows, then every stock level the jobs touch in sorted (warehouse, product) order with
`SELECT ... FOR UPDATE`, plans every outcome in memory against the locked balances, and writes ledger
rows, balances and job results with multi-row statements. It never commits: a terminal job status and
its stock change land in the same commit, so a redelivered job finds itself done and changes nothing.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Row, Text, bindparam, delete, insert, select, tuple_, type_coerce

from shared.events.kinds import NewEvent
from shared.events.outbox import append as append_events
from shared.events.stock import LevelEvents, job_completed
from shared.jobs.outcome import JobOutcome
from shared.jobs.rows import set_job_outcomes
from shared.jobs.status import FAILED, TERMINAL
from shared.literal_rows import insert_rows
from shared.models import Job, JobLine, LedgerEntry, Product, StockLevel, Warehouse, utcnow
from shared.problems import Problem
from shared.schemas.commands import Command, Count, StoredCommand, stored_command_adapter
from shared.stock import reservations
from shared.stock.planning import Catalog, JobPlan, plan_batch, plan_single
from shared.stock.state import Balance, JobContext, Key, RunningBalances
from shared.stock.upsert import upsert_levels


@dataclass
class _PendingJob:
    row: Row[Any]
    commands: list[StoredCommand]


class _BatchPayload(BaseModel):
    """What a batch job's payload holds (api/routes/commands.py)."""

    commands: list[Command]


# Columns, not ORM objects: the jobs are finished with driver SQL, never through the ORM, and
# building an object per job was about a tenth of the worker's CPU. The payload comes as text, for
# pydantic to parse and validate in one pass.
_JOB_COLUMNS = (Job.id, Job.kind, Job.mode, Job.status, type_coerce(Job.payload, Text).label("payload"),
                Job.attempts, Job.api_key_id, Job.result, Job.error, Job.submitted_at, Job.started_at,
                Job.completed_at, Job.request_id, Job.slot)

# The batch's reads, built once: only the lists bound to them change from batch to batch, and
# building the statements afresh cost about as much of the worker's CPU as running them.
_LOCK_JOBS = (select(*_JOB_COLUMNS).where(Job.id.in_(bindparam("ids", expanding=True)))
              .order_by(Job.id).with_for_update())
_WAREHOUSES = (select(Warehouse.id, Warehouse.code, Warehouse.active)
               .where(Warehouse.code.in_(bindparam("codes", expanding=True))))
_PRODUCTS = select(Product.id, Product.sku).where(Product.sku.in_(bindparam("skus", expanding=True)))
# One range scan of the (warehouse, product) unique index in its own order, so rows are locked in
# sorted order with one round trip (EXPLAIN: range on uq_stock_level_warehouse_id_product_id).
_LOCK_LEVELS = (select(StockLevel.id, StockLevel.warehouse_id, StockLevel.product_id, StockLevel.on_hand,
                       StockLevel.version, StockLevel.reserved, StockLevel.reorder_point)
                .where(tuple_(StockLevel.warehouse_id, StockLevel.product_id)
                       .in_(bindparam("keys", expanding=True)))
                .order_by(StockLevel.warehouse_id, StockLevel.product_id)
                .with_for_update())


_LEDGER_COLUMNS = ("stock_level_id", "type", "delta", "on_hand_after", "reserved_delta", "reserved_after",
                   "version", "job_id", "line", "reference", "reason", "reservation_id", "api_key_id",
                   "recorded_at")


def apply_jobs(conn: Connection, job_ids: Sequence[str], *, max_attempts: int = 5) -> list[JobOutcome]:
    """Apply the given jobs in the given order; return one outcome per known job id."""
    rows = _lock_jobs(conn, job_ids)
    outcomes: dict[str, JobOutcome] = {}
    finished: list[tuple[Row[Any], JobPlan]] = []
    pending: list[_PendingJob] = []
    command_types: dict[str, str] = {}  # a command job's type, for the metrics
    for job_id in dict.fromkeys(job_ids):
        row = rows.get(job_id)
        if row is None:
            continue
        if row.status in TERMINAL:
            outcomes[job_id] = _outcome(row, row.status, row.result, row.error, row.completed_at,
                                        _command_type(row), already_applied=True)
        elif row.attempts > max_attempts:
            problem = Problem("too-many-attempts", 500,
                              f"Abandoned after {row.attempts - 1} attempts that did not finish.")
            finished.append((row, JobPlan(FAILED, error=problem.to_dict())))
        else:
            try:
                commands = _parse(row)
            except ValidationError:
                # Only a row written by something other than the API can hold this: fail the job,
                # not the transaction of the jobs around it.
                problem = Problem("invalid-payload", 500, "The job's stored commands are not valid.")
                finished.append((row, JobPlan(FAILED, error=problem.to_dict())))
                continue
            pending.append(_PendingJob(row, commands))
            if row.kind == "command":
                command_types[job_id] = commands[0].type
    events: list[NewEvent] = []
    if pending:
        plans, events = _apply_pending(conn, pending)
        finished.extend(plans)
    now = utcnow()
    ended = _finish(conn, finished, now, command_types)
    outcomes.update(ended)
    # Last before the commit: the event sequence stays locked until then (shared/events/outbox.py).
    append_events(conn, [*events, *(job_completed(o) for o in ended.values())], now)
    return [outcomes[j] for j in dict.fromkeys(job_ids) if j in outcomes]


def _lock_jobs(conn: Connection, job_ids: Iterable[str]) -> dict[str, Row[Any]]:
    return {job.id: job for job in conn.execute(_LOCK_JOBS, {"ids": sorted(set(job_ids))})}


def _parse(row: Row[Any]) -> list[StoredCommand]:
    if row.kind == "command":
        return [stored_command_adapter.validate_json(row.payload)]
    return list(_BatchPayload.model_validate_json(row.payload).commands)


def _apply_pending(conn: Connection, pending: list[_PendingJob]
                   ) -> tuple[list[tuple[Row[Any], JobPlan]], list[NewEvent]]:
    """Plan every job against the locked balances and write the ledger and balances; returns the
    plans (the job rows are the caller's to finish) and the levels' events."""
    named = reservations.Named()
    for job in pending:
        for command in job.commands:
            named.add(command, job.row.api_key_id)
    held = reservations.levels_held(conn, named)
    catalog = _load_catalog(conn, [key for job in pending for c in job.commands for key in c.stock_keys()]
                            + [(code, sku) for _, code, sku in held])
    resolved = list(_resolved(catalog, pending))
    keys = {key for _, key in resolved} | {key for key, _, _ in held}
    named.counted = {key for command, key in resolved if isinstance(command, Count)}
    level_ids, locked, created, reorder_points = _lock_levels(conn, keys)
    balances = RunningBalances(locked, reservations.lock(conn, named, level_ids))
    level_events = LevelEvents(catalog.names(keys), {k: b.available for k, b in locked.items()},
                               reorder_points)

    now = utcnow()
    plans: list[tuple[Row[Any], JobPlan]] = []
    for job in pending:
        context = JobContext(job.row.id, job.row.api_key_id, job.row.submitted_at, job.row.slot, now)
        if job.row.kind == "command":
            plan = plan_single(job.commands[0], catalog, balances, context)
        else:
            plan = plan_batch(job.commands, job.row.mode == "atomic", catalog, balances, context)
        level_events.record(job.row.id, job.row.api_key_id, plan.movements)
        plans.append((job.row, plan))

    # Reservations first: a ledger entry that changed one names it, new ones included.
    reservation_ids = reservations.write(conn, balances.changed_holds(), level_ids)
    ledger_rows = [
        (level_ids[m.key], m.type, m.delta, m.on_hand_after, m.reserved_delta, m.reserved_after, m.version,
         row.id, m.line, m.reference, m.reason, reservation_ids[m.hold.owner] if m.hold else None,
         row.api_key_id, now)
        for row, plan in plans for m in plan.movements]
    changed = {level_ids[k]: (k, b) for k, b in balances.final().items() if b != locked.get(k)}
    if ledger_rows:
        insert_rows(conn, LedgerEntry.__table__, _LEDGER_COLUMNS, ledger_rows)
        upsert_levels(conn, changed, now)
    # A level created for a command that then failed would be a write by a failed job: take it back.
    unused = [level_ids[k] for k in created if level_ids[k] not in changed]
    if unused:
        # version 0 guards a row another transaction created and moved meanwhile.
        conn.execute(delete(StockLevel).where(StockLevel.id.in_(unused), StockLevel.version == 0,
                                              StockLevel.reorder_point.is_(None)))
    return plans, level_events.events


def _resolved(catalog: Catalog, pending: list[_PendingJob]) -> Iterable[tuple[StoredCommand, Key]]:
    """Each command with each level it names, for the commands the catalog can resolve."""
    for job in pending:
        for command in job.commands:
            key_list = catalog.resolve(command)
            if not isinstance(key_list, Problem):
                for key in key_list:
                    yield command, key


def _load_catalog(conn: Connection, named: list[tuple[str, str]]) -> Catalog:
    codes = {code for code, _ in named}
    skus = {sku for _, sku in named}
    warehouses = {code: (wid, active)
                  for wid, code, active in conn.execute(_WAREHOUSES, {"codes": list(codes)})}
    products = {sku: pid for pid, sku in conn.execute(_PRODUCTS, {"skus": list(skus)})}
    return Catalog(warehouses, products)


def _lock_levels(conn: Connection, keys: set[Key]
                 ) -> tuple[dict[Key, int], dict[Key, Balance], list[Key], dict[Key, int | None]]:
    """Lock the levels in (warehouse, product) order, creating the ones that never moved.
    Returns level ids, locked balances, the keys whose rows this transaction created, and the
    levels' reorder points."""
    found = _select_for_update(conn, keys)
    missing = sorted(keys - found.keys())
    if missing:
        # Rows that exist are locked first and new ones after: a rare order break on first use
        # that InnoDB's deadlock detection and the caller's retry cover.
        conn.execute(
            insert(StockLevel).prefix_with("IGNORE", dialect="mysql")
            .prefix_with("IGNORE", dialect="mariadb").prefix_with("OR IGNORE", dialect="sqlite"),
            [{"warehouse_id": w, "product_id": p, "on_hand": 0, "version": 0,
              "updated_at": utcnow()} for w, p in missing])
        found.update(_select_for_update(conn, set(missing)))
    ids = {key: level_id for key, (level_id, _, _) in found.items()}
    return (ids, {key: balance for key, (_, balance, _) in found.items()}, missing,
            {key: point for key, (_, _, point) in found.items()})


def _select_for_update(conn: Connection, keys: set[Key]) -> dict[Key, tuple[int, Balance, int | None]]:
    if not keys:
        return {}
    return {(warehouse_id, product_id): (level_id, Balance(on_hand, version, reserved), reorder_point)
            for level_id, warehouse_id, product_id, on_hand, version, reserved, reorder_point
            in conn.execute(_LOCK_LEVELS, {"keys": sorted(keys)})}


def _finish(conn: Connection, finished: list[tuple[Row[Any], JobPlan]], now: datetime,
            command_types: dict[str, str]) -> dict[str, JobOutcome]:
    """Record every job's outcome with one UPDATE and one insert of failed lines: a statement per
    job was most of a batch's time."""
    if not finished:
        return {}
    set_job_outcomes(conn, [(row.id, plan.status, plan.result, plan.error) for row, plan in finished],
                     now)
    failed_lines = [{"job_id": row.id, "line": line, "error": problem.at_line(line).to_dict()}
                    for row, plan in finished for line, problem in plan.failed_lines]
    if failed_lines:
        conn.execute(insert(JobLine), failed_lines)
    return {row.id: _outcome(row, plan.status, plan.result, plan.error, now,
                             command_types.get(row.id) or _command_type(row))
            for row, plan in finished}


def _command_type(row: Row[Any]) -> str:
    """A command job's type read from its payload (for a job that is not parsed to be applied)."""
    if row.kind != "command":
        return "batch"
    try:
        return str(json.loads(row.payload).get("type", "unknown"))
    except (ValueError, AttributeError):
        return "unknown"


def _outcome(row: Row[Any], status: str, result: Any, error: Any, completed_at: datetime | None,
             command_type: str, already_applied: bool = False) -> JobOutcome:
    return JobOutcome(row.id, row.kind, status, row.api_key_id, result, error, row.submitted_at,
                      row.started_at or completed_at, completed_at, already_applied, command_type,
                      row.request_id)
