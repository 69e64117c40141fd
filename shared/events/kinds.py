"""Event types, and an event as the apply path makes it, before it has a position."""

from dataclasses import dataclass
from typing import Any

JOB_COMPLETED = "job.completed"
STOCK_CHANGED = "stock.changed"
STOCK_LOW = "stock.low"
RESERVATION_EXPIRED = "reservation.expired"
TYPES = (JOB_COMPLETED, STOCK_CHANGED, STOCK_LOW, RESERVATION_EXPIRED)


@dataclass(frozen=True)
class NewEvent:
    type: str
    data: dict[str, Any]
    # Who may see it whole: the warehouse it concerns (a key limited to warehouses sees only its
    # own) and the API key whose job caused it (another key sees its job_id and reference as null).
    warehouse: str | None
    api_key_id: int | None
