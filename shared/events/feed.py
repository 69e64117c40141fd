"""Reading the events after a position, as one API key may see them.

A reader gets the events after its cursor in position order, up to the last position committed
when it asked; its next cursor is the last event it got, or, when nothing more is there for it,
that last committed position. Since positions are handed out in commit order without gaps
(shared/events/outbox.py), everything up to that position is already visible: a reader that keeps
its cursor never misses an event and never sees one twice. A read looks at most SCAN_WINDOW
positions, so a reader of rare events (one warehouse of many) pays per page, not per backlog.
"""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from shared.clock import rfc3339
from shared.events.kinds import JOB_COMPLETED, RESERVATION_EXPIRED
from shared.models import Event, EventSequence

SCAN_WINDOW = 10_000
# Only their key sees them at all; the others show a key's job_id and reference to that key only.
_OWNED = (JOB_COMPLETED, RESERVATION_EXPIRED)
_HIDDEN_FROM_OTHER_KEYS = ("job_id", "reference")


@dataclass(frozen=True)
class Viewer:
    """Who reads: an admin key sees everything; others their own jobs' events whole, and the stock
    events of their warehouses (all, if `warehouses` is None) with other keys' job ids hidden."""

    key_id: int
    is_admin: bool = False
    warehouses: Collection[str] | None = None


@dataclass(frozen=True)
class EventPage:
    items: list[dict[str, Any]]
    next_position: int


class CursorExpired(Exception):
    """The cursor points before the oldest event kept (retention deleted what came after it)."""


def public_id(position: int) -> str:
    return f"evt_{position}"


def read(session: Session, viewer: Viewer, after: int, limit: int,
         types: Collection[str] | None = None) -> EventPage:
    head = session.scalar(select(EventSequence.last_position).where(EventSequence.id == 1)) or 0
    oldest = session.scalar(select(func.min(Event.position)))
    if oldest is not None and after + 1 < oldest:
        raise CursorExpired(f"events before position {oldest} are no longer kept")
    until = min(head, after + SCAN_WINDOW)
    query = (select(Event).where(Event.position > after, Event.position <= until)
             .order_by(Event.position).limit(limit))
    if types:
        query = query.where(Event.type.in_(list(types)))
    if not viewer.is_admin:
        query = query.where(or_(Event.type.not_in(_OWNED), Event.api_key_id == viewer.key_id))
        if viewer.warehouses is not None:
            query = query.where(or_(Event.warehouse.in_(list(viewer.warehouses)),
                                    and_(Event.type.in_(_OWNED), Event.api_key_id == viewer.key_id)))
    events = list(session.scalars(query))
    next_position = events[-1].position if len(events) == limit else until
    return EventPage([shown(event, viewer) for event in events], max(next_position, after))


def shown(event: Event, viewer: Viewer) -> dict[str, Any]:
    """The event as this viewer may see it."""
    data = dict(event.data)
    if not viewer.is_admin and event.api_key_id != viewer.key_id:
        data.update({name: None for name in _HIDDEN_FROM_OTHER_KEYS if name in data})
    return {"id": public_id(event.position), "type": event.type, "created_at": rfc3339(event.created_at),
            "data": data}
