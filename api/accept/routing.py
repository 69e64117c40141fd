"""Which ordering slot a job goes to (shared/ordering.py).

A job whose first line names a warehouse is ordered by that warehouse. A release or a commit names
only a reservation: it is ordered where the reservation's reserve was, so that it applies after
the reserve even when it is sent before the reserve has been applied. That route is written when a
reserve is accepted, before its job (`reservation_route`; the latest reserve of an id wins). A
reservation with no route is unknown: its command goes to the slot of its id, and the worker
answers `/problems/unknown-reservation`.
"""

from sqlalchemy import select
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.orm import Session

from shared.db import get_session_factory
from shared.models import ReservationRoute
from shared.ordering import slot_for
from shared.schemas.commands import CommandBase, Commit, Release, Reserve


def touches_reservations(commands: list[CommandBase]) -> bool:
    return any(isinstance(c, Reserve | Release | Commit) for c in commands)


def plain_slot(commands: list[CommandBase]) -> int:
    """The slot of a job that touches no reservation: its first warehouse's."""
    return slot_for(commands[0].first_warehouse or "")


def reservation_slot(commands: list[CommandBase], api_key_id: int) -> int:
    """The slot of a job that touches reservations, with the routes of its reserves written
    (a blocking call: the caller runs it in a thread)."""
    first = commands[0]
    reserved = sorted({c.reservation for c in commands if isinstance(c, Reserve)})
    with get_session_factory()() as session:
        if first.first_warehouse is not None:
            slot = slot_for(first.first_warehouse)
        else:
            reservation = first.reservation  # type: ignore[attr-defined]
            routed = session.scalar(select(ReservationRoute.slot).where(
                ReservationRoute.api_key_id == api_key_id, ReservationRoute.client_id == reservation))
            slot = routed if routed is not None else slot_for(reservation)
        if reserved:
            _write_routes(session, api_key_id, reserved, slot)
            session.commit()
    return slot


def _write_routes(session: Session, api_key_id: int, reservations: list[str], slot: int) -> None:
    rows = [{"api_key_id": api_key_id, "client_id": r, "slot": slot} for r in reservations]
    if session.get_bind().dialect.name == "sqlite":
        lite = sqlite.insert(ReservationRoute)
        session.execute(lite.on_conflict_do_update(index_elements=["api_key_id", "client_id"],
                                                   set_={"slot": lite.excluded.slot}), rows)
        return
    stmt = mysql.insert(ReservationRoute)
    session.execute(stmt.on_duplicate_key_update(slot=stmt.inserted.slot), rows)
