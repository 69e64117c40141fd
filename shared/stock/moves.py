"""What each command does to the levels (and reservations) of the running state, or why it cannot.

Every decrease is checked against the level's available units (on hand minus held): no issue,
adjust, transfer or reserve ever promises a unit twice, and `available` never goes below zero.
"""

from dataclasses import replace

from shared.problems import Problem
from shared.schemas.commands import Adjust, Commit, Count, Expire, Issue, Receive, Release, Reserve, Transfer
from shared.stock import holds
from shared.stock.holds import COMMITTED, EXPIRED, RELEASED, Hold
from shared.stock.state import Balance, JobContext, Key, Movement, RunningBalances


def _insufficient(where: str, sku: str, balance: Balance, requested: int) -> Problem:
    held = f" ({balance.reserved} of {balance.on_hand} on hand are reserved)" if balance.reserved else ""
    return Problem("insufficient-stock", 409,
                   f"{where}/{sku} has {balance.available} available{held}; {requested} requested.",
                   {"on_hand": balance.on_hand, "reserved": balance.reserved,
                    "available": balance.available, "requested": requested})


def _check_expectations(command: object, balance: Balance) -> Problem | None:
    expected_on_hand = getattr(command, "expected_on_hand", None)
    expected_version = getattr(command, "expected_version", None)
    if expected_on_hand is not None and expected_on_hand != balance.on_hand:
        return Problem("stale-expectation", 409,
                       f"Expected on_hand {expected_on_hand}, found {balance.on_hand}.",
                       {"expected_on_hand": expected_on_hand, "on_hand": balance.on_hand})
    if expected_version is not None and expected_version != balance.version:
        return Problem("stale-expectation", 409,
                       f"Expected version {expected_version}, found {balance.version}.",
                       {"expected_version": expected_version, "version": balance.version})
    return None


def _move(command: object, key: Key, kind: str, before: Balance, line: int | None, *, delta: int = 0,
          reserved_delta: int = 0, hold: Hold | None = None) -> Movement:
    return Movement(key, kind, delta, before.on_hand + delta, before.version + 1, line,
                    getattr(command, "reference", None), getattr(command, "reason", None),
                    reserved_delta, before.reserved + reserved_delta, hold)


def _after(before: Balance, move: Movement) -> Balance:
    return Balance(move.on_hand_after, move.version, move.reserved_after)


def plan_command(command: object, keys: list[Key], balances: RunningBalances, job: JobContext,
                 line: int | None) -> list[Movement] | Problem:
    """A command that names its levels: receive, issue, adjust, count, transfer, reserve."""
    source = balances.get(keys[0])
    problem = _check_expectations(command, source)
    if problem:
        return problem
    match command:
        case Receive():
            return [_move(command, keys[0], "receive", source, line, delta=command.quantity)]
        case Issue():
            if source.available < command.quantity:
                return _insufficient(command.warehouse, command.sku, source, command.quantity)
            return [_move(command, keys[0], "issue", source, line, delta=-command.quantity)]
        case Adjust():
            if source.available + command.delta < 0:
                return _insufficient(command.warehouse, command.sku, source, -command.delta)
            return [_move(command, keys[0], "adjust", source, line, delta=command.delta)]
        case Count():
            return _count(command, keys[0], source, balances, job, line)
        case Transfer():
            if source.available < command.quantity:
                return _insufficient(command.from_warehouse, command.sku, source, command.quantity)
            target = balances.get(keys[1])
            return [_move(command, keys[0], "transfer_out", source, line, delta=-command.quantity),
                    _move(command, keys[1], "transfer_in", target, line, delta=command.quantity)]
        case Reserve():
            return _reserve(command, keys[0], source, balances, job, line)
    raise TypeError(f"unknown command {command!r}")


def _count(command: Count, key: Key, source: Balance, balances: RunningBalances, job: JobContext,
           line: int | None) -> list[Movement]:
    """A count that confirms the balance is still an event worth a ledger row (delta 0). One that
    leaves fewer units than are held releases the newest reservations until the rest fits."""
    moves = [_move(command, key, "count", source, line, delta=command.on_hand - source.on_hand)]
    for hold in holds.to_release_for(command.on_hand, balances.active_holds(key)):
        before = _after(source, moves[-1])
        moves.append(_move(command, key, "release", before, line, reserved_delta=-hold.held,
                           hold=hold.ended(RELEASED, job.now)))
    return moves


def _reserve(command: Reserve, key: Key, source: Balance, balances: RunningBalances, job: JobContext,
             line: int | None) -> list[Movement] | Problem:
    existing = balances.hold((job.api_key_id, command.reservation))
    if existing is not None:
        # The same reservation again (a retried reserve): nothing changes, nothing to record.
        return holds.conflict(existing, key, command.quantity) or []
    if source.available < command.quantity:
        return _insufficient(command.warehouse, command.sku, source, command.quantity)
    hold = holds.new_hold((job.api_key_id, command.reservation), key, command.quantity, command.expires_in,
                    accepted_at=job.accepted_at, now=job.now, slot=job.slot, job_id=job.job_id)
    return [_move(command, key, "reserve", source, line, reserved_delta=command.quantity, hold=hold)]


def plan_reservation_command(command: Release | Commit | Expire, balances: RunningBalances, job: JobContext,
                             line: int | None) -> list[Movement] | Problem:
    """A command that names only a reservation: its level is the reservation's."""
    if isinstance(command, Expire):
        hold = balances.hold_by_id(command.reservation_id)
        if hold is None or not hold.held:  # committed or released first: nothing to expire
            return []
        source = balances.get(hold.key)
        return [_move(command, hold.key, "expire", source, line, reserved_delta=-hold.held,
                      hold=hold.ended(EXPIRED, job.now))]
    hold = balances.hold((job.api_key_id, command.reservation))
    if hold is None:
        return holds.unknown(command.reservation)
    problem = holds.not_active(hold, job.now) or _check_expectations(command, balances.get(hold.key))
    if problem:
        return problem
    source = balances.get(hold.key)
    if isinstance(command, Release):
        return [_move(command, hold.key, "release", source, line, reserved_delta=-hold.held,
                      hold=hold.ended(RELEASED, job.now))]
    quantity = command.quantity or hold.held
    if quantity > hold.held:
        return Problem("commit-exceeds-reservation", 409,
                       f"Reservation {hold.owner[1]!r} holds {hold.held}; {quantity} to commit.",
                       {"reservation": hold.owner[1], "held": hold.held, "requested": quantity})
    committed = hold.committed + quantity
    after = hold.ended(COMMITTED, job.now, committed) if committed == hold.quantity else \
        replace(hold, committed=committed)
    return [_move(command, hold.key, "commit", source, line, delta=-quantity, reserved_delta=-quantity,
                  hold=after)]
