"""Append events in the caller's transaction, positioned in commit order."""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from shared.events.kinds import NewEvent
from shared.literal_rows import insert_rows
from shared.models import Event, EventSequence

_COLUMNS = ("position", "type", "warehouse", "api_key_id", "created_at", "data")
# Built once, as they run in every apply transaction.
_LOCK_SEQUENCE = select(EventSequence.last_position).where(EventSequence.id == 1).with_for_update()
_ADVANCE_SEQUENCE = (update(EventSequence).where(EventSequence.id == 1)
                     .values(last_position=bindparam("last_position")))


def append(conn: Connection, events: Sequence[NewEvent], now: datetime) -> None:
    """Write the events with the next positions. Call it last before the commit: the sequence row
    stays locked until then, so the next transaction's positions come after this one's commit."""
    if not events:
        return
    last = conn.execute(_LOCK_SEQUENCE).scalar_one()
    conn.execute(_ADVANCE_SEQUENCE, {"last_position": last + len(events)})
    rows = [(last + n, e.type, e.warehouse, e.api_key_id, now, e.data) for n, e in enumerate(events, 1)]
    insert_rows(conn, Event.__table__, _COLUMNS, rows)
