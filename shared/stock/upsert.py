"""Write many stock balances in one statement: the dialect-specific corner of the apply path."""

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Session

from shared.models import StockLevel
from shared.stock.state import Balance, Key


def _upsert_levels_statement() -> Any:
    stmt = mysql.insert(StockLevel.__table__)
    return stmt.on_duplicate_key_update(on_hand=stmt.inserted.on_hand, reserved=stmt.inserted.reserved,
                                        version=stmt.inserted.version, updated_at=stmt.inserted.updated_at)


# Built once: building it (its `inserted` columns) for every batch cost more than running it.
_UPSERT_LEVELS = _upsert_levels_statement()


def upsert_levels(session: Session, balances: dict[int, tuple[Key, Balance]], now: datetime) -> None:
    """Set on_hand, reserved and version of existing levels, given as level id -> (key, balance)."""
    if not balances:
        return
    rows = [{"level_id": level_id, "warehouse_id": key[0], "product_id": key[1],
             "on_hand": b.on_hand, "reserved": b.reserved, "version": b.version}
            for level_id, (key, b) in sorted(balances.items())]
    if session.get_bind().dialect.name in ("mysql", "mariadb"):
        # One multi-row statement instead of a round trip per level. The rows exist and are locked,
        # so this always takes the UPDATE branch.
        session.execute(_UPSERT_LEVELS, [{"id": r["level_id"], "warehouse_id": r["warehouse_id"],
                                "product_id": r["product_id"],
                                "on_hand": r["on_hand"], "reserved": r["reserved"], "version": r["version"],
                                "updated_at": now} for r in rows])
        return
    session.execute(
        update(StockLevel.__table__).where(StockLevel.__table__.c.id == bindparam("level_id"))
        .values(on_hand=bindparam("on_hand"), reserved=bindparam("reserved"), version=bindparam("version"),
                updated_at=now),
        rows)
