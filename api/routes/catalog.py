"""Warehouses and products: synchronous catalog writes and reads."""

from typing import Any

from fastapi import APIRouter, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.auth import Reader, Writer
from api.deps import SessionDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page
from api.problems import ProblemError, not_found
from api.schemas import (
    ProductCreate,
    ProductOut,
    ProductUpdate,
    WarehouseCreate,
    WarehouseOut,
    WarehouseUpdate,
)
from shared.clock import rfc3339
from shared.models import Product, Warehouse
from shared.problems import Problem

router = APIRouter(prefix="/v1")


def warehouse_out(w: Warehouse) -> WarehouseOut:
    return WarehouseOut(code=w.code, name=w.name, address=w.address, active=w.active,
                        created_at=rfc3339(w.created_at), updated_at=rfc3339(w.updated_at))


def product_out(p: Product) -> ProductOut:
    return ProductOut(sku=p.sku, name=p.name, unit=p.unit, created_at=rfc3339(p.created_at),
                      updated_at=rfc3339(p.updated_at))


def _create(session: SessionDep, row: Any, what: str) -> None:
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise ProblemError(Problem("conflict", 409, f"{what} already exists.")) from None


def _list(session: SessionDep, model: Any, limit: int, cursor: str | None) -> list[Any]:
    stmt = select(model).order_by(model.id).limit(limit + 1)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(model.id > after)
    return list(session.scalars(stmt))


@router.post("/warehouses", status_code=status.HTTP_201_CREATED, response_model=WarehouseOut)
def create_warehouse(body: WarehouseCreate, session: SessionDep, _: Writer) -> WarehouseOut:
    warehouse = Warehouse(code=body.code, name=body.name, address=body.address, active=True)
    _create(session, warehouse, f"Warehouse {body.code!r}")
    return warehouse_out(warehouse)


@router.get("/warehouses", response_model=Page)
def list_warehouses(session: SessionDep, _: Reader, limit: Limit = 100, cursor: Cursor = None) -> Page:
    return page(_list(session, Warehouse, limit, cursor), limit, warehouse_out, lambda w: w.id)


def _warehouse(session: SessionDep, code: str) -> Warehouse:
    warehouse = session.scalar(select(Warehouse).where(Warehouse.code == code))
    if warehouse is None:
        raise not_found(f"Warehouse {code!r}")
    return warehouse


@router.get("/warehouses/{code}", response_model=WarehouseOut)
def get_warehouse(code: str, session: SessionDep, _: Reader) -> WarehouseOut:
    return warehouse_out(_warehouse(session, code))


@router.patch("/warehouses/{code}", response_model=WarehouseOut)
def update_warehouse(code: str, body: WarehouseUpdate, session: SessionDep, _: Writer) -> WarehouseOut:
    warehouse = _warehouse(session, code)
    for field, value in body.model_dump(exclude_unset=True).items():
        if value is None and field != "address":
            raise ProblemError(Problem("validation-error", 422, f"{field} cannot be null.",
                                       {"errors": [{"loc": ["body", field],
                                                    "msg": "must not be null", "type": "null"}]}))
        setattr(warehouse, field, value)
    session.flush()
    return warehouse_out(warehouse)


@router.post("/products", status_code=status.HTTP_201_CREATED, response_model=ProductOut)
def create_product(body: ProductCreate, session: SessionDep, _: Writer) -> ProductOut:
    product = Product(sku=body.sku, name=body.name, unit=body.unit)
    _create(session, product, f"Product {body.sku!r}")
    return product_out(product)


@router.get("/products", response_model=Page)
def list_products(session: SessionDep, _: Reader, limit: Limit = 100, cursor: Cursor = None) -> Page:
    return page(_list(session, Product, limit, cursor), limit, product_out, lambda p: p.id)


def _product(session: SessionDep, sku: str) -> Product:
    product = session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        raise not_found(f"Product {sku!r}")
    return product


@router.get("/products/{sku}", response_model=ProductOut)
def get_product(sku: str, session: SessionDep, _: Reader) -> ProductOut:
    return product_out(_product(session, sku))


@router.patch("/products/{sku}", response_model=ProductOut)
def update_product(sku: str, body: ProductUpdate, session: SessionDep, _: Writer) -> ProductOut:
    product = _product(session, sku)
    for field, value in body.model_dump(exclude_unset=True).items():
        if value is None:
            raise ProblemError(Problem("validation-error", 422, f"{field} cannot be null.",
                                       {"errors": [{"loc": ["body", field],
                                                    "msg": "must not be null", "type": "null"}]}))
        setattr(product, field, value)
    session.flush()
    return product_out(product)
