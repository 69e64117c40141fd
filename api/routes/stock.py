"""Stock levels and the ledger, read straight from the database. A key limited to warehouses
reads its warehouses only, and another key's job ids and references read null
(shared/warehouse_limit.py). The lists answer CSV too (api/csv_export.py), from the same queries."""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import Row, ScalarSelect, Select, select
from sqlalchemy.orm import Session, aliased

from api.auth import GuardedRoute, Reader
from api.csv_export import CSV_RESPONSE, csv_response, wants_csv
from api.deps import SessionDep
from api.pagination import Cursor, Limit, Page, decode_cursor
from api.pagination import page as page_of
from api.problems import not_found
from api.schemas import LedgerOut, QueryTime, StockOut
from shared import warehouse_limit
from shared.api_keys import Principal
from shared.clock import rfc3339
from shared.models import LedgerEntry, Product, StockLevel, Warehouse
from shared.schemas.commands import CODE_PATTERN, LEDGER_TYPES, SKU_PATTERN

# Every route here is a read. The lists read their page of the listed table first, in a derived
# table the database cannot merge (it has a LIMIT), and join the codes onto those rows only: left to
# itself, MariaDB drives the join from the small catalog tables and sorts the whole table per page.
router = APIRouter(prefix="/v1", tags=["stock"], route_class=GuardedRoute)

CodeQuery = Annotated[str | None, Query(max_length=64)]
WarehousePath = Annotated[str, Path(pattern=CODE_PATTERN, description="The warehouse's code.")]
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN, description="The product's SKU.")]
LedgerType = Literal[LEDGER_TYPES]  # type: ignore[valid-type]
# A listed row as the list queries return it: the model, its warehouse's code, its product's SKU.
StockRow = Row[StockLevel, str, str]
LedgerRow = Row[LedgerEntry, str, str]


def _ids(session: SessionDep, warehouse: str, sku: str, principal: Principal) -> tuple[int, int]:
    warehouse_id = None
    if warehouse_limit.may_see(principal, warehouse):
        warehouse_id = session.scalar(select(Warehouse.id).where(Warehouse.code == warehouse))
    if warehouse_id is None:
        raise not_found(f"Warehouse {warehouse!r}")
    product_id = session.scalar(select(Product.id).where(Product.sku == sku))
    if product_id is None:
        raise not_found(f"Product {sku!r}")
    return warehouse_id, product_id


@router.get("/stock", response_model=Page[StockOut], responses=CSV_RESPONSE, summary="List stock levels")
def list_stock(request: Request, response: Response, session: SessionDep, principal: Reader,
               warehouse: CodeQuery = None, sku: CodeQuery = None, limit: Limit = 100,
               cursor: Cursor = None) -> Page[StockOut] | StreamingResponse:
    """Stock levels, a page at a time; with `Accept: text/csv`, all of them as CSV."""
    def read(session: Session, after: int | None, size: int) -> list[StockRow]:
        return _stock_rows(session, principal, warehouse, sku, after, size)

    after = decode_cursor(cursor)
    if wants_csv(request.headers.get("accept")):
        return csv_response("stock", StockOut, read, _stock_out, _first_id, after)
    response.headers["Vary"] = "Accept"
    return stock_page(session, principal, warehouse, sku, limit, after)


def stock_page(session: Session, principal: Principal, warehouse: str | None, sku: str | None,
               limit: int, after: int | None) -> Page[StockOut]:
    """The page of levels GET /v1/stock answers as JSON (the console's stock page shows it too)."""
    return page_of(_stock_rows(session, principal, warehouse, sku, after, limit + 1), limit, _stock_out,
                   _first_id)


def _stock_rows(session: Session, principal: Principal, warehouse: str | None, sku: str | None,
                after: int | None, limit: int) -> list[StockRow]:
    """Up to `limit` levels after the id given, with their codes, as the key may see them."""
    page = select(StockLevel).order_by(StockLevel.id).limit(limit)
    visible = warehouse_limit.visible_warehouse_ids(principal)
    if visible is not None:
        page = page.where(StockLevel.warehouse_id.in_(visible))
    if warehouse is not None:
        page = page.where(StockLevel.warehouse_id == _warehouse_id(warehouse))
    if sku is not None:
        page = page.where(StockLevel.product_id == _product_id(sku))
    if after is not None:
        page = page.where(StockLevel.id > after)
    level = aliased(StockLevel, page.subquery())
    return list(session.execute(
        select(level, Warehouse.code, Product.sku)
        .join(Warehouse, Warehouse.id == level.warehouse_id)
        .join(Product, Product.id == level.product_id).order_by(level.id)))


def _stock_out(r: StockRow) -> StockOut:
    return StockOut(warehouse=r[1], sku=r[2], on_hand=r[0].on_hand, reserved=r[0].reserved,
                    version=r[0].version, updated_at=rfc3339(r[0].updated_at),
                    reorder_point=r[0].reorder_point)


def _first_id(r: StockRow | LedgerRow) -> int:
    return r[0].id


def _warehouse_id(code: str) -> ScalarSelect[int]:
    return select(Warehouse.id).where(Warehouse.code == code).scalar_subquery()


def _product_id(sku: str) -> ScalarSelect[int]:
    return select(Product.id).where(Product.sku == sku).scalar_subquery()


@router.get("/stock/{warehouse}/{sku}", response_model=StockOut, summary="Get a stock level")
def get_stock(warehouse: WarehousePath, sku: SkuPath, session: SessionDep, principal: Reader,
              as_of: QueryTime | None = None) -> StockOut:
    warehouse_id, product_id = _ids(session, warehouse, sku, principal)
    level = session.scalar(select(StockLevel).where(StockLevel.warehouse_id == warehouse_id,
                                                    StockLevel.product_id == product_id))
    if level is None:
        return StockOut(warehouse=warehouse, sku=sku, on_hand=0, version=0, updated_at=None)
    if as_of is None:
        return StockOut(warehouse=warehouse, sku=sku, on_hand=level.on_hand, reserved=level.reserved,
                        version=level.version, updated_at=rfc3339(level.updated_at),
                        reorder_point=level.reorder_point)
    entry = session.execute(
        select(LedgerEntry.on_hand_after, LedgerEntry.reserved_after, LedgerEntry.version,
               LedgerEntry.recorded_at)
        .where(LedgerEntry.stock_level_id == level.id,
               LedgerEntry.recorded_at <= _end_of_millisecond(as_of))
        .order_by(LedgerEntry.id.desc()).limit(1)).first()
    if entry is None:
        return StockOut(warehouse=warehouse, sku=sku, on_hand=0, version=0, updated_at=None)
    return StockOut(warehouse=warehouse, sku=sku, on_hand=entry[0], reserved=entry[1], version=entry[2],
                    updated_at=rfc3339(entry[3]))


def _end_of_millisecond(value: datetime) -> datetime:
    """as_of names a whole millisecond (the precision shown): moves recorded within it count."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000 + 999)


def _level_filter(session: SessionDep, page: Select[LedgerEntry], warehouse: str | None,
                  sku: str | None) -> Select[LedgerEntry]:
    if warehouse is not None and sku is not None:
        # One level: served by the (stock_level_id, id) and (stock_level_id, type, id) indexes.
        level_id = session.scalar(select(StockLevel.id).where(
            StockLevel.warehouse_id == _warehouse_id(warehouse),
            StockLevel.product_id == _product_id(sku)))
        return page.where(LedgerEntry.stock_level_id == (level_id or -1))
    if warehouse is not None:
        return page.where(LedgerEntry.stock_level_id.in_(
            select(StockLevel.id).where(StockLevel.warehouse_id == _warehouse_id(warehouse))))
    if sku is not None:
        return page.where(LedgerEntry.stock_level_id.in_(
            select(StockLevel.id).where(StockLevel.product_id == _product_id(sku))))
    return page


def _by_time_index(page: Select[LedgerEntry]) -> Select[LedgerEntry]:
    """Read a time window through the recorded_at index: its cost follows the window, not the table.
    Left to itself the optimizer walks the ledger by id from the first entry, not knowing that ids
    grow with time, and reads nearly the whole table to reach a recent window."""
    for dialect in ("mysql", "mariadb"):
        page = page.with_hint(LedgerEntry, "USE INDEX (ix_ledger_entry_recorded_at)", dialect)
    return page


@router.get("/ledger", response_model=Page[LedgerOut], responses=CSV_RESPONSE,
            summary="List ledger entries")
def list_ledger(request: Request, response: Response, session: SessionDep, principal: Reader,
                warehouse: CodeQuery = None, sku: CodeQuery = None, type: LedgerType | None = None,
                job_id: Annotated[str | None, Query(max_length=36)] = None,
                since: QueryTime | None = None, until: QueryTime | None = None,
                limit: Limit = 100, cursor: Cursor = None) -> Page[LedgerOut] | StreamingResponse:
    """Ledger entries, oldest first, a page at a time; with `Accept: text/csv`, all of them as CSV."""
    filters = LedgerFilters(warehouse, sku, type, job_id, since, until)

    def read(session: Session, after: int | None, size: int) -> list[LedgerRow]:
        return _ledger_rows(session, principal, filters, after, size)

    def to_item(r: LedgerRow) -> LedgerOut:
        return _ledger_out(r[0], r[1], r[2], principal)

    after = decode_cursor(cursor)
    if wants_csv(request.headers.get("accept")):
        return csv_response("ledger", LedgerOut, read, to_item, _first_id, after)
    response.headers["Vary"] = "Accept"
    return page_of(read(session, after, limit + 1), limit, to_item, _first_id)


@dataclass(frozen=True)
class LedgerFilters:
    warehouse: str | None
    sku: str | None
    type: str | None
    job_id: str | None
    since: datetime | None
    until: datetime | None


def _ledger_rows(session: Session, principal: Principal, f: LedgerFilters, after: int | None,
                 limit: int) -> list[LedgerRow]:
    """Up to `limit` entries after the id given, with their codes, as the key may see them."""
    page = select(LedgerEntry).order_by(LedgerEntry.id).limit(limit)
    page = _level_filter(session, page, f.warehouse, f.sku)
    visible = warehouse_limit.visible_warehouse_ids(principal)
    if visible is not None:
        page = page.where(LedgerEntry.stock_level_id.in_(
            select(StockLevel.id).where(StockLevel.warehouse_id.in_(visible))))
    if f.type is not None:
        page = page.where(LedgerEntry.type == f.type)
    if f.job_id is not None:
        page = page.where(LedgerEntry.job_id == f.job_id)
        if not warehouse_limit.sees_every_job(principal):  # another key's job ids are not shown
            page = page.where(LedgerEntry.api_key_id == principal.key_id)
    if f.since is not None:
        page = page.where(LedgerEntry.recorded_at >= f.since)
    if f.until is not None:
        page = page.where(LedgerEntry.recorded_at < f.until)
    if (f.since or f.until) and not (f.warehouse or f.sku or f.job_id):
        page = _by_time_index(page)
    if after is not None:
        page = page.where(LedgerEntry.id > after)
    entry = aliased(LedgerEntry, page.subquery())
    return list(session.execute(
        select(entry, Warehouse.code, Product.sku)
        .join(StockLevel, StockLevel.id == entry.stock_level_id)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .join(Product, Product.id == StockLevel.product_id).order_by(entry.id)))


def _ledger_out(e: LedgerEntry, warehouse: str, sku: str, principal: Principal) -> LedgerOut:
    shown = warehouse_limit.shows_job_of(principal, e.api_key_id)
    return LedgerOut(id=e.id, warehouse=warehouse, sku=sku, type=e.type, delta=e.delta,
                     on_hand_after=e.on_hand_after, reserved_delta=e.reserved_delta,
                     reserved_after=e.reserved_after, version=e.version,
                     job_id=e.job_id if shown else None, line=e.line,
                     reference=e.reference if shown else None, reason=e.reason,
                     recorded_at=rfc3339(e.recorded_at))
