"""The reconcile page: prove the books balance (shared/stock/reconcile.py, what `cli.reconcile`
runs) and show every mismatch. It reads every stock level, ledger entry and job, so it is a POST
(an action, not a page a prefetch may load) and needs an admin key that sees every warehouse."""

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.console.gate import Admin, checked_form
from api.console.pages import PREFIX, ConsoleRoute, render
from api.console.stock import read
from api.problems import ProblemError
from shared import warehouse_limit
from shared.api_keys import Principal
from shared.models import Job, LedgerEntry, StockLevel, utcnow
from shared.problems import Problem
from shared.stock.reconcile import find_mismatches

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


def _allowed(principal: Principal) -> None:
    if not warehouse_limit.sees_every_job(principal):
        raise ProblemError(Problem("forbidden", 403, "Reconciling reads every warehouse: it needs an "
                                   "admin key that is not limited to warehouses."))


def run(session: Session) -> dict[str, Any]:
    mismatches = find_mismatches(session)
    counted = {name: session.scalar(select(func.count()).select_from(model))
               for name, model in (("levels", StockLevel), ("entries", LedgerEntry), ("jobs", Job))}
    return {"mismatches": mismatches, "at": utcnow(), **counted}


@router.get("/reconcile")
def reconcile_form(request: Request, principal: Admin) -> Response:
    _allowed(principal)
    return render(request, "reconcile.html", {"report": None})


@router.post("/reconcile")
async def reconcile(request: Request, principal: Admin) -> Response:
    _allowed(principal)
    await checked_form(request)
    return render(request, "reconcile.html", {"report": await read(run)})
