"""A key limited to warehouses (`cli.keys create --warehouses SEL-1,BUS-2`): what it may submit and
what it may see. One home for the rule, for every place that needs it: commands and batches
(api/accept/submit.py), catalog writes and reads, stock and ledger reads; events, webhooks and
reservations call the same functions.

- Writes naming another warehouse are refused whole, before anything is done: 403
  `/problems/forbidden-warehouse`, naming the lines (`refusal`, `foreign_lines`).
- Reads see its warehouses only: another warehouse is not found, lists leave it out
  (`may_see`, `visible_warehouse_ids`).
- Another key's job ids and references read null (`shows_job_of`), for it and for any key that is
  not an admin key.

A key that is not limited (`warehouses` None) is let through by each of these at once.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, select

from shared.api_keys import Principal
from shared.models import Warehouse
from shared.problems import Problem

# A refusal names at most this many lines; `line_count` says how many there were.
MAX_NAMED_LINES = 100


def may_use(principal: Principal, warehouse: str) -> bool:
    return principal.warehouses is None or warehouse in principal.warehouses


def may_see(principal: Principal, warehouse: str) -> bool:
    return may_use(principal, warehouse)


def foreign_lines(principal: Principal, lines: Sequence[Iterable[str]]) -> list[int]:
    """The lines (each given as the warehouses it names) that name a warehouse outside the limit."""
    allowed = principal.warehouses
    if allowed is None:
        return []
    return [n for n, warehouses in enumerate(lines) if not allowed.issuperset(warehouses)]


def refusal(principal: Principal, lines: Sequence[Iterable[str]], *, batch: bool) -> Problem | None:
    """The 403 for work whose lines (each given as the warehouses it names) go outside the key's
    warehouses, or None if they stay inside."""
    foreign = foreign_lines(principal, lines)
    if not foreign:
        return None
    named = sorted({w for n in foreign for w in lines[n]} - (principal.warehouses or frozenset()))
    extra: dict[str, Any] = {"warehouses": named[:MAX_NAMED_LINES]}
    if batch:
        extra |= {"lines": foreign[:MAX_NAMED_LINES], "line_count": len(foreign)}
    what = f"{len(foreign)} line(s) of this batch name" if batch else "This command names"
    return Problem("forbidden-warehouse", 403,
                   f"{what} a warehouse this API key is not limited to; nothing was queued.", extra)


def warehouse_refusal(principal: Principal, warehouse: str) -> Problem | None:
    """The 403 for a write to one warehouse outside the key's (catalog, subscriptions)."""
    if may_use(principal, warehouse):
        return None
    return Problem("forbidden-warehouse", 403,
                   f"This API key is not limited to the warehouse {warehouse!r}.",
                   {"warehouses": [warehouse]})


def visible_warehouse_ids(principal: Principal) -> Select[int] | None:
    """The ids of the warehouses the key may see, as a subquery to filter a list by; None for a
    key that sees every warehouse."""
    if principal.warehouses is None:
        return None
    return select(Warehouse.id).where(Warehouse.code.in_(sorted(principal.warehouses)))


def sees_every_job(principal: Principal) -> bool:
    """An admin key that is not limited to warehouses sees every key's jobs."""
    return principal.is_admin and principal.warehouses is None


def shows_job_of(principal: Principal, api_key_id: int | None) -> bool:
    """Whether a job of this key, and a ledger entry's (or an event's) job id and reference, may be
    shown to the caller: they are its own, or it sees every job."""
    return api_key_id == principal.key_id or sees_every_job(principal)
