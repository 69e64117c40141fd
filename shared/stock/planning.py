"""Pure stock arithmetic: how a job's commands play out against the running state of a transaction
(state.py), with no database in sight (what each command does: moves.py; reservations: holds.py).

`apply.py` loads and locks the balances and reservations, hands them here, and writes back what
comes out.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.problems import Problem
from shared.schemas.commands import Commit, Count, Expire, Release, Transfer
from shared.stock.holds import Hold
from shared.stock.moves import plan_command, plan_reservation_command
from shared.stock.state import Balance, JobContext, Key, Movement, RunningBalances


@dataclass(frozen=True)
class Catalog:
    """Warehouse code -> (id, active) and sku -> id, for the codes a set of jobs names."""

    warehouses: Mapping[str, tuple[int, bool]]
    products: Mapping[str, int]

    def names(self, keys: Iterable[Key]) -> dict[Key, tuple[str, str]]:
        """(warehouse code, sku) of each key."""
        codes = {wid: code for code, (wid, _) in self.warehouses.items()}
        skus = {pid: sku for sku, pid in self.products.items()}
        return {key: (codes[key[0]], skus[key[1]]) for key in keys}

    def resolve(self, command: Any) -> list[Key] | Problem:
        keys = []
        for code, sku in command.stock_keys():
            warehouse = self.warehouses.get(code)
            if warehouse is None:
                return Problem("unknown-warehouse", 422, f"No warehouse with code {code!r}.",
                               {"warehouse": code})
            if not warehouse[1]:
                return Problem("inactive-warehouse", 409, f"Warehouse {code!r} is inactive.",
                               {"warehouse": code})
            product = self.products.get(sku)
            if product is None:
                return Problem("unknown-sku", 422, f"No product with sku {sku!r}.", {"sku": sku})
            keys.append((warehouse[0], product))
        return keys


@dataclass
class JobPlan:
    """What one job does: its movements (empty if it fails) and how it ends."""

    status: str
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    movements: list[Movement] = field(default_factory=list)
    failed_lines: list[tuple[int, Problem]] = field(default_factory=list)


def _level_result(m: Movement) -> dict[str, int]:
    return {"on_hand_after": m.on_hand_after, "version_after": m.version}


def _reservation_result(hold: Hold, balance: Balance) -> dict[str, Any]:
    return {"on_hand_after": balance.on_hand, "version_after": balance.version,
            "reserved_after": balance.reserved, "available_after": balance.available,
            "reservation": {"reservation": hold.owner[1], "status": hold.status, "held": hold.held}}


def _result(command: Any, movements: list[Movement], balances: RunningBalances,
            job: JobContext) -> dict[str, Any]:
    if isinstance(command, Transfer):
        return {"from": _level_result(movements[0]), "to": _level_result(movements[1])}
    if isinstance(command, Expire):
        return {"expired": len(movements)}
    if not movements:  # a retried reserve: the reservation as it stands
        hold = balances.hold((job.api_key_id, command.reservation))
        assert hold is not None
        return _reservation_result(hold, balances.get(hold.key))
    last = movements[-1]
    if isinstance(command, Count):
        result: dict[str, Any] = _level_result(last)
        if len(movements) > 1:  # it released reservations that no longer fit
            result |= {"reserved_after": last.reserved_after,
                       "available_after": last.on_hand_after - last.reserved_after,
                       "released_reservations": [m.hold.owner[1] for m in movements[1:] if m.hold]}
        return result
    if last.hold is not None:
        return _reservation_result(last.hold, Balance(last.on_hand_after, last.version, last.reserved_after))
    return _level_result(last)


def _plan_line(command: Any, catalog: Catalog, balances: RunningBalances, job: JobContext,
               line: int | None) -> list[Movement] | Problem:
    if isinstance(command, Release | Commit | Expire):
        return plan_reservation_command(command, balances, job, line)
    keys = catalog.resolve(command)
    if isinstance(keys, Problem):
        return keys
    return plan_command(command, keys, balances, job, line)


def plan_single(command: Any, catalog: Catalog, balances: RunningBalances,
                job: JobContext = JobContext()) -> JobPlan:
    outcome = _plan_line(command, catalog, balances, job, None)
    if isinstance(outcome, Problem):
        return JobPlan("failed", error=outcome.to_dict())
    balances.stage(outcome)
    balances.keep()
    return JobPlan("succeeded", result=_result(command, outcome, balances, job), movements=outcome)


def plan_batch(commands: list[Any], atomic: bool, catalog: Catalog, balances: RunningBalances,
               job: JobContext = JobContext()) -> JobPlan:
    """Every line is tried, so a failed batch reports all its bad lines, not just the first."""
    plan = JobPlan("succeeded")
    for line, command in enumerate(commands):
        outcome = _plan_line(command, catalog, balances, job, line)
        if isinstance(outcome, Problem):
            plan.failed_lines.append((line, outcome))
            continue
        balances.stage(outcome)
        plan.movements.extend(outcome)
        if not atomic:
            balances.keep()
    failed = len(plan.failed_lines)
    if atomic and failed:
        balances.discard()
        plan.movements = []
        first_line, first_problem = plan.failed_lines[0]
        plan.status = "failed"
        plan.error = first_problem.at_line(first_line).to_dict()
        plan.result = {"total": len(commands), "succeeded": 0, "failed": failed}
        return plan
    balances.keep()
    plan.result = {"total": len(commands), "succeeded": len(commands) - failed, "failed": failed}
    if failed == len(commands):
        plan.status = "failed"
    elif failed:
        plan.status = "partially_failed"
    return plan
