"""The running state of a transaction: levels' balances and reservations as its commands apply,
one after another (planning.py plays the commands out against it)."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from shared.stock.holds import Hold, Owner

Key = tuple[int, int]  # (warehouse id, product id)


@dataclass(frozen=True)
class Balance:
    on_hand: int
    version: int
    reserved: int = 0

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class Movement:
    """One ledger row to write: `on_hand_after`, `reserved_after` and `version` are the level's
    state after it; `hold` is the reservation as it stands after it, if it changed one."""

    key: Key
    type: str
    delta: int
    on_hand_after: int
    version: int
    line: int | None
    reference: str | None
    reason: str | None
    reserved_delta: int = 0
    reserved_after: int = 0
    hold: Hold | None = None


@dataclass(frozen=True)
class JobContext:
    """The job a command belongs to: reservations are its key's, and expire from its acceptance."""

    job_id: str = ""
    api_key_id: int | None = None
    accepted_at: datetime = datetime.min
    slot: int = 0
    now: datetime = datetime.min


class RunningBalances:
    """Balances and reservations as commands apply one after another; a unit of lines is tried on a
    scratch layer and kept only if the whole unit succeeds."""

    def __init__(self, locked: Mapping[Key, Balance], holds: Iterable[Hold] = ()) -> None:
        self._current = dict(locked)
        self._scratch: dict[Key, Balance] = {}
        self._holds: dict[Owner, Hold] = {h.owner: h for h in holds}
        self._loaded = dict(self._holds)
        self._scratch_holds: dict[Owner, Hold] = {}

    def get(self, key: Key) -> Balance:
        return self._scratch.get(key) or self._current.get(key) or Balance(0, 0)

    def hold(self, owner: Owner) -> Hold | None:
        return self._scratch_holds.get(owner) or self._holds.get(owner)

    def hold_by_id(self, hold_id: int) -> Hold | None:
        return next((h for h in self._every_hold() if h.id == hold_id), None)

    def active_holds(self, key: Key) -> list[Hold]:
        return [h for h in self._every_hold() if h.key == key and h.held]

    def _every_hold(self) -> list[Hold]:
        return list({**self._holds, **self._scratch_holds}.values())

    def stage(self, movements: Iterable[Movement]) -> None:
        for m in movements:
            self._scratch[m.key] = Balance(m.on_hand_after, m.version, m.reserved_after)
            if m.hold is not None:
                self._scratch_holds[m.hold.owner] = m.hold

    def keep(self) -> None:
        self._current.update(self._scratch)
        self._scratch.clear()
        self._holds.update(self._scratch_holds)
        self._scratch_holds.clear()

    def discard(self) -> None:
        self._scratch.clear()
        self._scratch_holds.clear()

    def final(self) -> dict[Key, Balance]:
        return dict(self._current)

    def changed_holds(self) -> list[Hold]:
        """Reservations made or changed by what was kept."""
        return [h for owner, h in self._holds.items() if self._loaded.get(owner) != h]
