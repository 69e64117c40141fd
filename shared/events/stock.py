"""The events of an apply transaction: a `stock.changed` per level change, a `stock.low` when a
level's available quantity falls below its reorder point (once per crossing: from at or above it
to below it), a `reservation.expired` per expiry, and a `job.completed` per finished job."""

from collections.abc import Iterable, Mapping
from typing import Any

from shared.events.kinds import JOB_COMPLETED, RESERVATION_EXPIRED, STOCK_CHANGED, STOCK_LOW, NewEvent
from shared.jobs.documents import from_outcome
from shared.jobs.outcome import JobOutcome
from shared.stock.state import Key, Movement


class LevelEvents:
    """Follows the levels of one transaction as its movements happen, in order."""

    def __init__(self, names: Mapping[Key, tuple[str, str]], available: Mapping[Key, int],
                 reorder_points: Mapping[Key, int | None]) -> None:
        self._names = names  # (warehouse code, sku)
        self._available = dict(available)
        self._reorder_points = reorder_points
        self.events: list[NewEvent] = []

    def record(self, job_id: str, api_key_id: int | None, movements: Iterable[Movement]) -> None:
        for m in movements:
            warehouse, sku = self._names[m.key]
            owner = api_key_id
            if m.type == "expire" and m.hold is not None:
                # The service's own job: the reservation's key owns what it announces.
                owner = m.hold.owner[0]
                self.events.append(NewEvent(RESERVATION_EXPIRED, m.hold.shown(warehouse, sku), warehouse,
                                            owner))
            available = m.on_hand_after - m.reserved_after
            level = {"warehouse": warehouse, "sku": sku, "on_hand": m.on_hand_after,
                     "reserved": m.reserved_after, "available": available, "version": m.version}
            self.events.append(NewEvent(STOCK_CHANGED, {
                **level, "delta": m.delta, "type": m.type, "job_id": job_id, "reference": m.reference},
                warehouse, owner))
            point = self._reorder_points.get(m.key)
            before = self._available.get(m.key, 0)
            if point is not None and before >= point > available:
                self.events.append(NewEvent(STOCK_LOW, {**level, "reorder_point": point, "job_id": job_id},
                                            warehouse, owner))
            self._available[m.key] = available


def job_completed(outcome: JobOutcome) -> NewEvent:
    data: dict[str, Any] = {k: v for k, v in from_outcome(outcome).items() if k != "owner"}
    return NewEvent(JOB_COMPLETED, data, None, outcome.api_key_id)
