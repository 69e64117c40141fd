"""The promises checked after a test's load, straight in the database: every accepted command
applied, none twice, each client's commands in the order it sent them, and the books balanced."""

import time
from collections.abc import Iterable

from sqlalchemy import Engine, bindparam, func, select, text
from sqlalchemy.orm import Session

from shared.models import Job, LedgerEntry, Product, StockLevel, Warehouse
from shared.stock.reconcile import find_mismatches
from tests.support.sequential import Sent

UNFINISHED = ("queued", "running")

_STATUSES = select(Job.id, Job.status).where(Job.id.in_(bindparam("ids", expanding=True)))
_ENTRIES = (select(LedgerEntry.job_id, func.count())
            .where(LedgerEntry.job_id.in_(bindparam("ids", expanding=True))).group_by(LedgerEntry.job_id))


def wait_until_finished(engine: Engine, job_ids: Iterable[str], timeout: float) -> float:
    """Wait until none of these jobs is queued or running; returns the seconds it took."""
    ids, started = list(job_ids), time.monotonic()
    query = text("SELECT COUNT(*) FROM job WHERE status IN ('queued', 'running') AND id IN :ids").bindparams(
        bindparam("ids", expanding=True))
    while True:
        with engine.connect() as conn:
            left = sum(conn.execute(query, {"ids": ids[n:n + 2000]}).scalar_one()
                       for n in range(0, len(ids), 2000))
        if not left:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{left} accepted job(s) still unfinished after {timeout:.0f} s")
        time.sleep(0.2)


def _ledger_order(session: Session, warehouse: str, sku: str) -> list[str]:
    return list(session.scalars(
        select(LedgerEntry.job_id).join(StockLevel, StockLevel.id == LedgerEntry.stock_level_id)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .join(Product, Product.id == StockLevel.product_id)
        .where(Warehouse.code == warehouse, Product.sku == sku).order_by(LedgerEntry.version)))


def broken_promises(session: Session, clients: Iterable[Sent]) -> list[str]:
    """What went wrong for these sequential clients' single commands, in words; empty if nothing."""
    clients = list(clients)
    session.rollback()  # a fresh snapshot
    problems: list[str] = []
    ids = [j for c in clients for j in c.job_ids]
    statuses: dict[str, str] = {}
    entries: dict[str, int] = {}
    for n in range(0, len(ids), 2000):
        chunk = ids[n:n + 2000]
        statuses.update(dict(session.execute(_STATUSES, {"ids": chunk}).all()))
        entries.update(dict(session.execute(_ENTRIES, {"ids": chunk}).all()))
    lost = [j for j in ids if j not in statuses]
    if lost:
        problems.append(f"{len(lost)} accepted job(s) have no row (lost): {lost[:5]}")
    unsuccessful = {j: s for j, s in statuses.items() if s != "succeeded"}
    if unsuccessful:
        problems.append(f"{len(unsuccessful)} job(s) did not succeed (an issue before its receive fails): "
                        f"{list(unsuccessful.items())[:5]}")
    twice = {j: n for j, n in entries.items() if n != 1}
    if twice:
        problems.append(f"{len(twice)} job(s) with other than one ledger entry: {list(twice.items())[:5]}")
    if len(set(ids)) != len(ids):
        problems.append("a job id was answered for two commands")
    for client in clients:
        mine = set(client.job_ids)
        applied = [j for j in _ledger_order(session, client.warehouse, client.sku) if j in mine]
        if applied != client.job_ids:
            problems.append(f"{client.warehouse}/{client.sku}: applied out of the order it was sent")
    mismatches = find_mismatches(session)
    if mismatches:
        problems.append(f"reconcile: {len(mismatches)} mismatches: {mismatches[:5]}")
    return problems
