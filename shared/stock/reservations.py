"""Reservations in the database, for the apply transaction (apply.py): which ones its commands
name, the levels they hold (to be locked with the rest), the rows themselves locked, and what
changed written back. The arithmetic is in holds.py and moves.py.

A reservation's row is only ever changed by a transaction that holds its level's lock, so its level
is read first without a lock (it never changes), and the row itself is read with `FOR UPDATE`
after the levels are locked: a locking read sees the latest commit, not the transaction's snapshot.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, bindparam, false, insert, or_, select, tuple_, update

from shared.models import Product, Reservation, StockLevel, Warehouse
from shared.schemas.commands import Commit, Expire, Release, Reserve
from shared.stock.holds import ACTIVE, Hold, Owner
from shared.stock.state import Key


@dataclass
class Named:
    """The reservations a transaction's commands name: by owner (API key, client's id) or by id
    (the service's expiries), and the levels whose counts may release some."""

    owners: set[Owner] = field(default_factory=set)
    ids: set[int] = field(default_factory=set)
    counted: set[Key] = field(default_factory=set)

    def add(self, command: Any, api_key_id: int | None) -> None:
        if isinstance(command, Reserve | Release | Commit):
            self.owners.add((api_key_id, command.reservation))
        elif isinstance(command, Expire):
            self.ids.add(command.reservation_id)

    def _where(self, level_ids: Iterable[int] = ()) -> ColumnElement[bool]:
        named: list[ColumnElement[bool]] = [false()]
        if self.owners:
            named.append(tuple_(Reservation.api_key_id, Reservation.client_id).in_(sorted(self.owners)))
        if self.ids:
            named.append(Reservation.id.in_(sorted(self.ids)))
        if level_ids := sorted(level_ids):
            named.append(and_(Reservation.stock_level_id.in_(level_ids), Reservation.status == ACTIVE))
        return or_(*named)


def levels_held(conn: Connection, named: Named) -> list[tuple[Key, str, str]]:
    """The levels of the named reservations: (key, warehouse code, sku), to lock and to name."""
    if not named.owners and not named.ids:
        return []
    rows = conn.execute(
        select(StockLevel.warehouse_id, StockLevel.product_id, Warehouse.code, Product.sku)
        .select_from(Reservation).join(StockLevel, StockLevel.id == Reservation.stock_level_id)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .join(Product, Product.id == StockLevel.product_id).where(named._where()))
    return [((w, p), code, sku) for w, p, code, sku in rows]


def lock(conn: Connection, named: Named, level_ids: dict[Key, int]) -> list[Hold]:
    """The named reservations and the active ones of counted levels, locked; call with the levels
    locked."""
    counted = [level_ids[k] for k in named.counted if k in level_ids]
    if not named.owners and not named.ids and not counted:
        return []
    rows = conn.execute(
        select(Reservation.__table__, StockLevel.warehouse_id, StockLevel.product_id)
        .join(StockLevel, StockLevel.id == Reservation.stock_level_id)
        .where(named._where(counted)).order_by(Reservation.id).with_for_update())
    return [Hold((r.api_key_id, r.client_id), (r.warehouse_id, r.product_id), r.quantity, r.committed,
                 r.status, r.expires_at, r.created_at, r.slot, r.job_id, r.id, r.ended_at) for r in rows]


def write(conn: Connection, changed: list[Hold], level_ids: dict[Key, int]) -> dict[Owner, int]:
    """New reservations inserted, ended or partly committed ones updated; returns the id of each."""
    new = [{"api_key_id": h.owner[0], "client_id": h.owner[1], "stock_level_id": level_ids[h.key],
            "quantity": h.quantity, "committed": h.committed, "status": h.status,
            "expires_at": h.expires_at, "slot": h.slot, "job_id": h.job_id, "created_at": h.created_at,
            "ended_at": h.ended_at} for h in changed if h.id is None]
    ids = {h.owner: h.id for h in changed if h.id is not None}
    if new:
        conn.execute(insert(Reservation), new)
        # A multi-row INSERT reports only its first id, and ids need not be consecutive.
        owners = sorted(h.owner for h in changed if h.id is None)
        ids.update({(key, client): rid for rid, key, client in conn.execute(
            select(Reservation.id, Reservation.api_key_id, Reservation.client_id)
            .where(tuple_(Reservation.api_key_id, Reservation.client_id).in_(owners)))})
    existing = [{"rid": h.id, "committed": h.committed, "status": h.status, "ended_at": h.ended_at}
                for h in changed if h.id is not None]
    if existing:
        table = Reservation.__table__
        conn.execute(update(table).where(table.c.id == bindparam("rid"))
                     .values(committed=bindparam("committed"), status=bindparam("status"),
                             ended_at=bindparam("ended_at")), existing)
    return ids
