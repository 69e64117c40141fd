"""The stock page: levels by warehouse and SKU, and one level with its latest movements and a chart
of its history. The reads are the API's own (api/routes/stock.py), so a key limited to warehouses
sees its warehouses only, and another key's job ids and references are hidden the same way."""

import re
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.console.chart import Point, history_svg
from api.console.gate import Reader
from api.console.pages import PREFIX, ConsoleRoute, render
from api.pagination import decode_cursor
from api.problems import ProblemError
from api.routes import stock as stock_reads
from shared import warehouse_limit
from shared.api_keys import Principal
from shared.db import get_session_factory
from shared.models import LedgerEntry, Product, StockLevel, Warehouse
from shared.problems import Problem
from shared.schemas.commands import CODE_PATTERN, SKU_PATTERN

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
# The movements a level's page lists and charts: the latest ones.
HISTORY = 200
T = TypeVar("T")


async def read(work: Callable[[Session], T]) -> T:
    """Run a database read off the event loop, in a session of its own."""
    def run() -> T:
        with get_session_factory()() as session:
            return work(session)
    return await run_in_threadpool(run)


def _field(value: str | None, pattern: str, what: str, problems: list[str]) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if not re.fullmatch(pattern, value):
        problems.append(f"{what} {value[:64]!r} is not valid ({pattern.strip('^$')})")
        return None
    return value


@router.get("/stock")
async def stock_list(request: Request, principal: Reader, warehouse: str | None = None,
                     sku: str | None = None, cursor: str | None = None) -> Response:
    problems: list[str] = []
    code = _field(warehouse, CODE_PATTERN, "warehouse", problems)
    product = _field(sku, SKU_PATTERN, "SKU", problems)
    page = None
    if not problems:
        try:
            page = await read(lambda s: stock_reads.stock_page(
                s, principal, code, product, PAGE_SIZE, decode_cursor((cursor or None) and cursor[:200])))
        except ProblemError as exc:  # a cursor that is not one
            problems.append(exc.problem.detail)
    return render(request, "stock.html", {
        "warehouse": warehouse or "", "sku": sku or "", "problems": problems,
        "levels": page.items if page else [], "next_cursor": page.next_cursor if page else None})


def _history(session: Session, principal: Principal, warehouse: str, sku: str) -> list[Any]:
    """The level's latest movements, oldest first, shown as GET /v1/ledger shows them."""
    rows = session.execute(
        select(LedgerEntry).join(StockLevel, StockLevel.id == LedgerEntry.stock_level_id)
        .where(StockLevel.warehouse_id == select(Warehouse.id).where(Warehouse.code == warehouse)
               .scalar_subquery(),
               StockLevel.product_id == select(Product.id).where(Product.sku == sku).scalar_subquery())
        .order_by(LedgerEntry.id.desc()).limit(HISTORY)).scalars().all()
    return [_entry(e, principal) for e in reversed(rows)]


def _entry(e: LedgerEntry, principal: Principal) -> dict[str, Any]:
    shown = warehouse_limit.shows_job_of(principal, e.api_key_id)
    return {"id": e.id, "type": e.type, "delta": e.delta, "on_hand_after": e.on_hand_after,
            "reserved_after": e.reserved_after, "version": e.version, "recorded_at": e.recorded_at,
            "job_id": e.job_id if shown else None, "reference": e.reference if shown else None,
            "reason": e.reason}


def _level_and_history(session: Session, principal: Principal, warehouse: str,
                       sku: str) -> tuple[Any, list[Any]]:
    # get_stock says 404 for another key's warehouse, as the API does: nothing more is read then.
    level = stock_reads.get_stock(warehouse, sku, session, principal, None)
    return level, _history(session, principal, warehouse, sku)


@router.get("/stock/{warehouse}/{sku}")
async def stock_level(request: Request, principal: Reader, warehouse: str, sku: str) -> Response:
    if not (re.fullmatch(CODE_PATTERN, warehouse) and re.fullmatch(SKU_PATTERN, sku)):
        raise ProblemError(Problem("not-found", 404, "No such warehouse and SKU."))
    level, history = await read(lambda s: _level_and_history(s, principal, warehouse, sku))
    points = [Point(at=e["recorded_at"], on_hand=e["on_hand_after"],
                    available=e["on_hand_after"] - e["reserved_after"]) for e in history]
    chart = history_svg(points, title=f"{warehouse} / {sku}: on hand and available")
    return render(request, "level.html", {"level": level, "history": list(reversed(history)),
                                          "chart": chart, "history_limit": HISTORY})
