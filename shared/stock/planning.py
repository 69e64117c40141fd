"""Pure stock arithmetic: what each command does to the balances, with no database in sight.

`apply.py` loads and locks the balances, hands them here, and writes back what comes out.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.problems import Problem
from shared.schemas.commands import Adjust, Command, Count, Issue, Receive, Transfer

Key = tuple[int, int]  # (warehouse id, product id)


@dataclass(frozen=True)
class Balance:
    on_hand: int
    version: int


@dataclass(frozen=True)
class Movement:
    """One ledger row to write: `on_hand_after` and `version` are the level's state after it."""

    key: Key
    type: str
    delta: int
    on_hand_after: int
    version: int
    line: int | None
    reference: str | None
    reason: str | None


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

    def resolve(self, command: Command) -> list[Key] | Problem:
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


class RunningBalances:
    """Balances as commands apply one after another; a unit of lines is tried on a scratch layer
    and kept only if the whole unit succeeds."""

    def __init__(self, locked: Mapping[Key, Balance]) -> None:
        self._current = dict(locked)
        self._scratch: dict[Key, Balance] = {}

    def get(self, key: Key) -> Balance:
        return self._scratch.get(key) or self._current.get(key) or Balance(0, 0)

    def stage(self, movements: Iterable[Movement]) -> None:
        for m in movements:
            self._scratch[m.key] = Balance(m.on_hand_after, m.version)

    def keep(self) -> None:
        self._current.update(self._scratch)
        self._scratch.clear()

    def discard(self) -> None:
        self._scratch.clear()

    def final(self) -> dict[Key, Balance]:
        return dict(self._current)


def _insufficient(command: Command, on_hand: int, requested: int) -> Problem:
    where = command.stock_keys()[0][0]
    return Problem(
        "insufficient-stock", 409,
        f"{where}/{command.sku} has {on_hand} on hand; {requested} requested.",  # type: ignore[union-attr]
        {"on_hand": on_hand, "requested": requested},
    )


def _check_expectations(command: Command, balance: Balance) -> Problem | None:
    if command.expected_on_hand is not None and command.expected_on_hand != balance.on_hand:
        return Problem("stale-expectation", 409,
                       f"Expected on_hand {command.expected_on_hand}, found {balance.on_hand}.",
                       {"expected_on_hand": command.expected_on_hand, "on_hand": balance.on_hand})
    if command.expected_version is not None and command.expected_version != balance.version:
        return Problem("stale-expectation", 409,
                       f"Expected version {command.expected_version}, found {balance.version}.",
                       {"expected_version": command.expected_version, "version": balance.version})
    return None


def plan_command(command: Command, keys: list[Key], balances: RunningBalances,
                 line: int | None) -> list[Movement] | Problem:
    """The movements one command makes against the running balances, or why it cannot."""
    source = balances.get(keys[0])
    problem = _check_expectations(command, source)
    if problem:
        return problem

    def move(key: Key, kind: str, delta: int, before: Balance) -> Movement:
        return Movement(key, kind, delta, before.on_hand + delta, before.version + 1, line,
                        command.reference, command.reason)

    match command:
        case Receive():
            return [move(keys[0], "receive", command.quantity, source)]
        case Issue():
            if source.on_hand < command.quantity:
                return _insufficient(command, source.on_hand, command.quantity)
            return [move(keys[0], "issue", -command.quantity, source)]
        case Adjust():
            if source.on_hand + command.delta < 0:
                return _insufficient(command, source.on_hand, -command.delta)
            return [move(keys[0], "adjust", command.delta, source)]
        case Count():
            # A count that confirms the balance is still an event worth a ledger row (delta 0).
            return [move(keys[0], "count", command.on_hand - source.on_hand, source)]
        case Transfer():
            if source.on_hand < command.quantity:
                return _insufficient(command, source.on_hand, command.quantity)
            target = balances.get(keys[1])
            return [move(keys[0], "transfer_out", -command.quantity, source),
                    move(keys[1], "transfer_in", command.quantity, target)]
    raise TypeError(f"unknown command {command!r}")


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


def _plan_line(command: Command, catalog: Catalog, balances: RunningBalances,
               line: int | None) -> list[Movement] | Problem:
    keys = catalog.resolve(command)
    if isinstance(keys, Problem):
        return keys
    return plan_command(command, keys, balances, line)


def plan_single(command: Command, catalog: Catalog, balances: RunningBalances) -> JobPlan:
    outcome = _plan_line(command, catalog, balances, None)
    if isinstance(outcome, Problem):
        return JobPlan("failed", error=outcome.to_dict())
    balances.stage(outcome)
    balances.keep()
    if isinstance(command, Transfer):
        result = {"from": _level_result(outcome[0]), "to": _level_result(outcome[1])}
    else:
        result = _level_result(outcome[0])
    return JobPlan("succeeded", result=result, movements=outcome)


def plan_batch(commands: list[Command], atomic: bool, catalog: Catalog,
               balances: RunningBalances) -> JobPlan:
    """Every line is tried, so a failed batch reports all its bad lines, not just the first."""
    plan = JobPlan("succeeded")
    for line, command in enumerate(commands):
        outcome = _plan_line(command, catalog, balances, line)
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
