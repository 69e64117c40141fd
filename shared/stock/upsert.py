"""Write many stock balances in one statement: the dialect-specific corner of the apply path."""

from datetime import datetime

from sqlalchemy import Connection, bindparam, update

from shared.literal_rows import insert_rows
from shared.models import StockLevel
from shared.stock.state import Balance, Key

_UPSERT_COLUMNS = ("id", "warehouse_id", "product_id", "on_hand", "reserved", "version", "updated_at")


def upsert_levels(conn: Connection, balances: dict[int, tuple[Key, Balance]], now: datetime) -> None:
    """Set on_hand, reserved and version of existing levels, given as level id -> (key, balance)."""
    if not balances:
        return
    rows = [{"level_id": level_id, "warehouse_id": key[0], "product_id": key[1],
             "on_hand": b.on_hand, "reserved": b.reserved, "version": b.version}
            for level_id, (key, b) in sorted(balances.items())]
    if conn.dialect.name in ("mysql", "mariadb"):
        # One multi-row statement instead of a round trip per level. The rows exist and are locked,
        # so this always takes the UPDATE branch.
        insert_rows(conn, StockLevel.__table__, _UPSERT_COLUMNS,
                    [(r["level_id"], r["warehouse_id"], r["product_id"], r["on_hand"], r["reserved"],
                      r["version"], now) for r in rows],
                    update_on_duplicate=("on_hand", "reserved", "version", "updated_at"))
        return
    conn.execute(
        update(StockLevel.__table__).where(StockLevel.__table__.c.id == bindparam("level_id"))
        .values(on_hand=bindparam("on_hand"), reserved=bindparam("reserved"), version=bindparam("version"),
                updated_at=now),
        rows)
