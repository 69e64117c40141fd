"""Append events in the caller's transaction, positioned in commit order."""

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from shared.events.kinds import NewEvent
from shared.models import Event, EventSequence

_LOCK_SEQUENCE = select(EventSequence.last_position).where(EventSequence.id == 1).with_for_update()


def append(session: Session, events: Sequence[NewEvent], now: datetime) -> None:
    """Write the events with the next positions. Call it last before the commit: the sequence row
    stays locked until then, so the next transaction's positions come after this one's commit."""
    if not events:
        return
    last = session.execute(_LOCK_SEQUENCE).scalar_one()
    session.execute(update(EventSequence).where(EventSequence.id == 1)
                    .values(last_position=last + len(events)))
    conn = session.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    created_at = Event.__table__.c.created_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    stamp = created_at(now) if created_at else now
    rows = [(last + n, e.type, e.warehouse, e.api_key_id, stamp, json.dumps(e.data, separators=(",", ":")))
            for n, e in enumerate(events, 1)]
    # Driver SQL, one statement: the apply path's hottest write after the ledger.
    conn.exec_driver_sql(
        "INSERT INTO event (position, type, warehouse, api_key_id, created_at, data) VALUES "
        + ", ".join([f"({', '.join([mark] * 6)})"] * len(rows)),
        tuple(value for row in rows for value in row))
