"""Release reservations past their time: a thread in every worker on the shard queues.

Every EXPIRY_INTERVAL_SECONDS it looks for active reservations whose `expires_at` has passed, writes
an `expire` job for each in the reservation's ordering slot, and drains those slots at once
(shared/drain.py), without a broker round trip: so an expiry is applied within about a second, in
its reservation's order, through the same apply path as any command (a ledger entry of type
`expire`, the level's version, a `reservation.expired` event).

Each expiry's job id is derived from the reservation's id, so any number of workers scanning at the
same moment write one job (the others' INSERTs are ignored), and a scan that dies after writing
leaves a job that the next scan (or the sweep) applies. A commit or release that is applied first
wins: the expire job then finds nothing held and changes nothing.
"""

import uuid

from sqlalchemy import insert, select

from shared.db import get_session_factory
from shared.drain import drain
from shared.jobs.rows import new_row
from shared.models import Job, Reservation, utcnow
from shared.settings import get_settings
from shared.stock.holds import ACTIVE
from worker.periodic import PeriodicThread

# A fixed namespace: the same reservation always gets the same expire job id.
_EXPIRY_NAMESPACE = uuid.UUID("6c1b6f44-4f0e-4f59-9a53-0d8f5e3cbb1e")
# A scan writes at most this many expiries; the rest wait for the next (a second later at most).
MAX_EXPIRIES_PER_SCAN = 500


def expire_job_id(reservation_id: int) -> str:
    return str(uuid.uuid5(_EXPIRY_NAMESPACE, f"expire:{reservation_id}"))


def write_expiries() -> list[int]:
    """Write an expire job for each reservation past its time; returns their slots."""
    now = utcnow()
    with get_session_factory()() as session:
        due = session.execute(
            select(Reservation.id, Reservation.slot)
            .where(Reservation.status == ACTIVE, Reservation.expires_at <= now)
            .order_by(Reservation.expires_at).limit(MAX_EXPIRIES_PER_SCAN)).all()
        if not due:
            return []
        rows = [new_row(job_id=expire_job_id(rid), kind="command", mode=None,
                        payload={"type": "expire", "reservation_id": rid}, slot=slot, line_count=1,
                        api_key_id=None, idempotency_key=None, request_hash=None, request_id=None,
                        submitted_at=now) for rid, slot in due]
        session.execute(insert(Job).prefix_with("IGNORE", dialect="mysql")
                        .prefix_with("IGNORE", dialect="mariadb")
                        .prefix_with("OR IGNORE", dialect="sqlite"), rows)
        session.commit()
    return sorted({slot for _, slot in due})


class ExpiryScanner(PeriodicThread):
    name = "the expiry scan"

    def run_once(self) -> int:
        """Expire what is due; returns how many expire jobs were applied."""
        slots = write_expiries()
        if not slots:
            return 0
        return sum(1 for o in drain(slots) if o.command_type == "expire" and not o.already_applied)


def start_expiry_scanner() -> ExpiryScanner:
    scanner = ExpiryScanner(get_settings().expiry_interval_seconds)
    scanner.start()
    return scanner
