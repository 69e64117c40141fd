"""Reservations in the pure stock arithmetic (shared/stock/holds.py, moves.py, planning.py): what
reserve, release, commit, expire and a count do to held units, without a database."""

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.schemas.commands import command_adapter, stored_command_adapter
from shared.stock.holds import ACTIVE, COMMITTED, EXPIRED, RELEASED
from shared.stock.planning import Catalog, plan_batch, plan_single
from shared.stock.state import Balance, JobContext, RunningBalances

SEL, BOOK = 1, 10
LEVEL = (SEL, BOOK)
CATALOG = Catalog(warehouses={"SEL-1": (SEL, True)}, products={"BOOK-001": BOOK})
KEY = 7
T0 = datetime(2026, 12, 1, 12, 0, 0)


def job(at: datetime = T0, job_id: str = "j") -> JobContext:
    return JobContext(job_id=job_id, api_key_id=KEY, accepted_at=at, slot=3, now=at)


def reserve(quantity: int, reservation: str = "cart-1", expires_in: int = 900) -> Any:
    return command_adapter.validate_python({"type": "reserve", "warehouse": "SEL-1", "sku": "BOOK-001",
                                            "quantity": quantity, "reservation": reservation,
                                            "expires_in": expires_in})


def release(reservation: str = "cart-1") -> Any:
    return command_adapter.validate_python({"type": "release", "reservation": reservation})


def commit(reservation: str = "cart-1", quantity: int | None = None) -> Any:
    body: dict[str, Any] = {"type": "commit", "reservation": reservation}
    if quantity is not None:
        body["quantity"] = quantity
    return command_adapter.validate_python(body)


def issue(quantity: int) -> Any:
    return command_adapter.validate_python({"type": "issue", "warehouse": "SEL-1", "sku": "BOOK-001",
                                            "quantity": quantity})


def count(on_hand: int) -> Any:
    return command_adapter.validate_python({"type": "count", "warehouse": "SEL-1", "sku": "BOOK-001",
                                            "on_hand": on_hand})


def stocked(on_hand: int = 10) -> RunningBalances:
    return RunningBalances({LEVEL: Balance(on_hand, 1)})


def test_a_reserve_holds_units_and_records_a_ledger_movement() -> None:
    running = stocked()
    plan = plan_single(reserve(4), CATALOG, running, job())
    assert plan.status == "succeeded"
    [move] = plan.movements
    assert (move.type, move.delta, move.reserved_delta, move.on_hand_after, move.reserved_after,
            move.version) == ("reserve", 0, 4, 10, 4, 2)
    assert move.hold is not None and move.hold.status == ACTIVE
    assert move.hold.expires_at == T0 + timedelta(seconds=900)
    assert plan.result == {"on_hand_after": 10, "version_after": 2, "reserved_after": 4, "available_after": 6,
                           "reservation": {"reservation": "cart-1", "status": "active", "held": 4}}
    assert running.get(LEVEL) == Balance(10, 2, 4)
    assert [h.owner for h in running.changed_holds()] == [(KEY, "cart-1")]


def test_nothing_is_promised_twice_reserve_and_issue_see_only_available_units() -> None:
    running = stocked(10)
    assert plan_single(reserve(8), CATALOG, running, job()).status == "succeeded"
    refused = plan_single(reserve(3, "cart-2"), CATALOG, running, job())
    assert refused.error is not None and refused.error["type"] == "/problems/insufficient-stock"
    assert (refused.error["on_hand"], refused.error["reserved"], refused.error["available"]) == (10, 8, 2)
    assert plan_single(issue(3), CATALOG, running, job()).status == "failed"
    assert plan_single(issue(2), CATALOG, running, job()).status == "succeeded"
    assert running.get(LEVEL).available == 0


def test_a_repeated_reserve_is_the_same_reservation_and_changes_nothing() -> None:
    running = stocked()
    plan_single(reserve(4), CATALOG, running, job())
    again = plan_single(reserve(4), CATALOG, running, job(job_id="j2"))
    assert again.status == "succeeded" and again.movements == []
    assert again.result is not None and again.result["reserved_after"] == 4
    other = plan_single(reserve(5), CATALOG, running, job(job_id="j3"))
    assert other.error is not None and other.error["type"] == "/problems/reservation-conflict"
    assert running.get(LEVEL) == Balance(10, 2, 4)


def test_release_gives_the_units_back_and_ends_the_reservation() -> None:
    running = stocked()
    plan_single(reserve(4), CATALOG, running, job())
    plan = plan_single(release(), CATALOG, running, job())
    [move] = plan.movements
    assert (move.type, move.delta, move.reserved_delta, move.reserved_after) == ("release", 0, -4, 0)
    assert move.hold is not None and move.hold.status == RELEASED
    again = plan_single(release(), CATALOG, running, job())
    assert again.error is not None and again.error["type"] == "/problems/reservation-ended"


def test_a_partial_commit_issues_part_and_leaves_the_rest_held() -> None:
    running = stocked()
    plan_single(reserve(5), CATALOG, running, job())
    first = plan_single(commit(quantity=2), CATALOG, running, job())
    [move] = first.movements
    assert (move.type, move.delta, move.reserved_delta, move.on_hand_after, move.reserved_after) == \
        ("commit", -2, -2, 8, 3)
    assert move.hold is not None and (move.hold.status, move.hold.committed, move.hold.held) == (ACTIVE, 2, 3)
    too_much = plan_single(commit(quantity=4), CATALOG, running, job())
    assert too_much.error is not None and too_much.error["type"] == "/problems/commit-exceeds-reservation"
    rest = plan_single(commit(), CATALOG, running, job())
    assert rest.movements[0].hold is not None and rest.movements[0].hold.status == COMMITTED
    assert running.get(LEVEL) == Balance(5, 4, 0)


def test_a_commit_after_the_expiry_fails_and_the_expiry_then_releases() -> None:
    running = stocked()
    plan_single(reserve(3, expires_in=60), CATALOG, running, job())
    late = T0 + timedelta(seconds=60)
    refused = plan_single(commit(), CATALOG, running, job(late))
    assert refused.error is not None and refused.error["type"] == "/problems/reservation-expired"
    [hold] = running.changed_holds()
    expire = stored_command_adapter.validate_python({"type": "expire", "reservation_id": 1})
    running = RunningBalances(running.final(), [replace(hold, id=1)])
    plan = plan_single(expire, CATALOG, running, JobContext(job_id="x", now=late))
    [move] = plan.movements
    assert (move.type, move.reserved_delta, move.reserved_after) == ("expire", -3, 0)
    assert move.hold is not None and move.hold.status == EXPIRED
    assert plan.result == {"expired": 1}
    again = plan_single(expire, CATALOG, running, JobContext(job_id="y", now=late))
    assert again.status == "succeeded" and again.movements == [] and again.result == {"expired": 0}


def test_unknown_reservations_are_refused() -> None:
    plan = plan_single(commit("nope"), CATALOG, stocked(), job())
    assert plan.error is not None and plan.error["type"] == "/problems/unknown-reservation"


def test_a_count_below_what_is_held_releases_the_newest_reservations_first() -> None:
    running = stocked(10)
    for n, quantity in enumerate((3, 3, 3)):
        plan_single(reserve(quantity, f"cart-{n}"), CATALOG, running, job(T0 + timedelta(seconds=n)))
    plan = plan_single(count(4), CATALOG, running, job(T0 + timedelta(seconds=10)))
    assert [m.type for m in plan.movements] == ["count", "release", "release"]
    assert plan.result is not None and plan.result["released_reservations"] == ["cart-2", "cart-1"]
    assert running.get(LEVEL) == Balance(4, 7, 3)


def test_an_atomic_batch_of_reserves_holds_all_or_nothing() -> None:
    running = stocked(5)
    plan = plan_batch([reserve(2, "a"), reserve(2, "b"), reserve(2, "c")], True, CATALOG, running, job())
    assert plan.status == "failed" and plan.movements == []
    assert running.get(LEVEL) == Balance(5, 1, 0) and running.changed_holds() == []
    plan = plan_batch([reserve(2, "a"), reserve(2, "b"), reserve(2, "c")], False, CATALOG, running, job())
    assert plan.status == "partially_failed"
    assert sorted(h.owner[1] for h in running.changed_holds()) == ["a", "b"]
