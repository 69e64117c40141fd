"""Reservations, in pure arithmetic: what reserve, release, commit and expire do to a level's held
units and to the reservation, against the running state of a transaction (planning.py).

- reserve: holds `quantity` of the level's available units until `expires_in` seconds after the
  command was accepted; fails with insufficient-stock if fewer are available. A reservation id is
  the client's, unique per API key: a reserve repeated with the same level and quantity is the same
  reservation (it succeeds and changes nothing), with others it fails (reservation-conflict).
- release: gives the held units back. commit: issues held units (all, or `quantity` of them; the
  rest stays held until released or expired). Both fail on an unknown reservation, on one that
  ended, and on one past its time (reservation-expired), so a commit that races the expiry has one
  winner: whichever the reservation's order applies first, and after `expires_at` it is the expiry.
- expire: the service's own release of a reservation past its time.
- a count that leaves fewer units than are held releases the newest reservations first until the
  rest fits (the oldest holds are the closest to being picked), and says which in its result.
"""

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.clock import rfc3339
from shared.problems import Problem

ACTIVE, COMMITTED, RELEASED, EXPIRED = "active", "committed", "released", "expired"
Owner = tuple[int | None, str]  # (API key id, the client's reservation id)


@dataclass(frozen=True)
class Hold:
    """A reservation as the transaction sees it; `id` is None until it is written."""

    owner: Owner
    key: tuple[int, int]  # the level (warehouse id, product id)
    quantity: int
    committed: int
    status: str
    expires_at: datetime
    created_at: datetime
    slot: int
    job_id: str
    id: int | None = None
    ended_at: datetime | None = None

    @property
    def held(self) -> int:
        return self.quantity - self.committed if self.status == ACTIVE else 0

    def ended(self, status: str, at: datetime, committed: int | None = None) -> "Hold":
        return replace(self, status=status, ended_at=at,
                       committed=self.committed if committed is None else committed)

    def shown(self, warehouse: str, sku: str) -> dict[str, Any]:
        """As GET /v1/reservations/{id} shows it."""
        return {"reservation": self.owner[1], "warehouse": warehouse, "sku": sku, "quantity": self.quantity,
                "committed": self.committed, "status": self.status, "expires_at": rfc3339(self.expires_at)}


def unknown(reservation: str) -> Problem:
    return Problem("unknown-reservation", 404, f"No reservation {reservation!r} for this API key.",
                   {"reservation": reservation})


def not_active(hold: Hold, now: datetime) -> Problem | None:
    """Why a release or commit cannot touch this reservation, if it cannot."""
    if hold.status == EXPIRED or (hold.status == ACTIVE and now >= hold.expires_at):
        return Problem("reservation-expired", 409,
                       f"Reservation {hold.owner[1]!r} expired at {rfc3339(hold.expires_at)}.",
                       {"reservation": hold.owner[1], "expired_at": rfc3339(hold.expires_at)})
    if hold.status != ACTIVE:
        return Problem("reservation-ended", 409, f"Reservation {hold.owner[1]!r} is {hold.status}.",
                       {"reservation": hold.owner[1], "status": hold.status})
    return None


def new_hold(owner: Owner, key: tuple[int, int], quantity: int, expires_in: int, *, accepted_at: datetime,
             now: datetime, slot: int, job_id: str) -> Hold:
    expires_at = accepted_at + timedelta(seconds=expires_in)
    return Hold(owner, key, quantity, 0, ACTIVE, expires_at, now, slot, job_id)


def conflict(hold: Hold, key: tuple[int, int], quantity: int) -> Problem | None:
    """A reserve naming an existing reservation: the same one again, or a conflict."""
    if hold.key == key and hold.quantity == quantity:
        return None
    return Problem("reservation-conflict", 409,
                   f"Reservation {hold.owner[1]!r} exists with another level or quantity.",
                   {"reservation": hold.owner[1]})


def to_release_for(on_hand: int, holds: list[Hold]) -> list[Hold]:
    """The reservations a count to `on_hand` must release, newest first, so the rest fits."""
    held = sum(h.held for h in holds)
    released = []
    for hold in sorted(holds, key=lambda h: (h.created_at, h.id or 0), reverse=True):
        if held <= on_hand:
            break
        released.append(hold)
        held -= hold.held
    return released
