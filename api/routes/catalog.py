"""Warehouses and products: synchronous catalog writes and reads. Writes need the `catalog` scope
and are recorded with the key that made them (`catalog_change`); a key limited to warehouses
writes and sees only its own (shared/warehouse_limit.py). Products are one catalog for all."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api import examples
from api.auth import CatalogWriter, GuardedRoute, Reader
from api.deps import SessionDep
from api.pagination import Cursor, Limit, Page, decode_cursor, page
from api.problems import ProblemError, not_found
from api.schemas import ProductOut, WarehouseOut
from shared import warehouse_limit
from shared.api_keys import Principal
from shared.clock import rfc3339
from shared.models import CatalogChange, Product, Warehouse
from shared.problems import Problem
from shared.schemas.catalog import ProductCreate, ProductUpdate, WarehouseCreate, WarehouseUpdate
from shared.schemas.commands import CODE_PATTERN, SKU_PATTERN

router = APIRouter(prefix="/v1", tags=["catalog"], route_class=GuardedRoute)

CodePath = Annotated[str, Path(pattern=CODE_PATTERN, description="The warehouse's code.")]
SkuPath = Annotated[str, Path(pattern=SKU_PATTERN, description="The product's SKU.")]


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


def _record(session: SessionDep, principal: Principal, kind: str, code: str, action: str,
            changes: dict[str, Any]) -> None:
    """Who changed the catalog, in the same transaction as the change."""
    session.add(CatalogChange(api_key_id=principal.key_id, kind=kind, code=code, action=action,
                              changes=changes))


def _refuse_foreign(principal: Principal, code: str) -> None:
    refused = warehouse_limit.warehouse_refusal(principal, code)
    if refused is not None:
        raise ProblemError(refused)


def _list(session: SessionDep, model: Any, limit: int, cursor: str | None, where: Any = None) -> list[Any]:
    stmt = select(model).order_by(model.id).limit(limit + 1)
    if where is not None:
        stmt = stmt.where(where)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(model.id > after)
    return list(session.scalars(stmt))


@router.post("/warehouses", status_code=status.HTTP_201_CREATED, response_model=WarehouseOut,
             summary="Create a warehouse")
def create_warehouse(body: Annotated[WarehouseCreate, Body(openapi_examples=examples.WAREHOUSE_CREATE)],
                     session: SessionDep, principal: CatalogWriter) -> WarehouseOut:
    _refuse_foreign(principal, body.code)
    warehouse = Warehouse(code=body.code, name=body.name, address=body.address, active=True)
    _create(session, warehouse, f"Warehouse {body.code!r}")
    _record(session, principal, "warehouse", body.code, "create", body.model_dump())
    return warehouse_out(warehouse)


@router.get("/warehouses", response_model=Page[WarehouseOut], summary="List warehouses")
def list_warehouses(session: SessionDep, principal: Reader, limit: Limit = 100,
                    cursor: Cursor = None) -> Page[WarehouseOut]:
    visible = warehouse_limit.visible_warehouse_ids(principal)
    where = Warehouse.id.in_(visible) if visible is not None else None
    return page(_list(session, Warehouse, limit, cursor, where), limit, warehouse_out, lambda w: w.id)


def _warehouse(session: SessionDep, code: str, principal: Principal) -> Warehouse:
    warehouse = None
    if warehouse_limit.may_see(principal, code):
        warehouse = session.scalar(select(Warehouse).where(Warehouse.code == code))
    if warehouse is None:
        raise not_found(f"Warehouse {code!r}")
    return warehouse


@router.get("/warehouses/{code}", response_model=WarehouseOut, summary="Get a warehouse")
def get_warehouse(code: CodePath, session: SessionDep, principal: Reader) -> WarehouseOut:
    return warehouse_out(_warehouse(session, code, principal))


@router.patch("/warehouses/{code}", response_model=WarehouseOut, summary="Change a warehouse")
def update_warehouse(code: CodePath,
                     body: Annotated[WarehouseUpdate, Body(openapi_examples=examples.WAREHOUSE_UPDATE)],
                     session: SessionDep, principal: CatalogWriter) -> WarehouseOut:
    _refuse_foreign(principal, code)
    warehouse = _warehouse(session, code, principal)
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None and field != "address":
            raise _null(field)
        setattr(warehouse, field, value)
    session.flush()
    _record(session, principal, "warehouse", code, "update", changes)
    return warehouse_out(warehouse)


def _null(field: str) -> ProblemError:
    return ProblemError(Problem("validation-error", 422, f"{field} cannot be null.",
                                {"errors": [{"loc": ["body", field], "msg": "must not be null",
                                             "type": "null"}]}))


@router.post("/products", status_code=status.HTTP_201_CREATED, response_model=ProductOut,
             summary="Create a product")
def create_product(body: Annotated[ProductCreate, Body(openapi_examples=examples.PRODUCT_CREATE)],
                   session: SessionDep, principal: CatalogWriter) -> ProductOut:
    product = Product(sku=body.sku, name=body.name, unit=body.unit)
    _create(session, product, f"Product {body.sku!r}")
    _record(session, principal, "product", body.sku, "create", body.model_dump())
    return product_out(product)


@router.get("/products", response_model=Page[ProductOut], summary="List products")
def list_products(session: SessionDep, _: Reader, limit: Limit = 100,
                  cursor: Cursor = None) -> Page[ProductOut]:
    return page(_list(session, Product, limit, cursor), limit, product_out, lambda p: p.id)


def _product(session: SessionDep, sku: str) -> Product:
    product = session.scalar(select(Product).where(Product.sku == sku))
    if product is None:
        raise not_found(f"Product {sku!r}")
    return product


@router.get("/products/{sku}", response_model=ProductOut, summary="Get a product")
def get_product(sku: SkuPath, session: SessionDep, _: Reader) -> ProductOut:
    return product_out(_product(session, sku))


@router.patch("/products/{sku}", response_model=ProductOut, summary="Change a product")
def update_product(sku: SkuPath,
                   body: Annotated[ProductUpdate, Body(openapi_examples=examples.PRODUCT_UPDATE)],
                   session: SessionDep, principal: CatalogWriter) -> ProductOut:
    product = _product(session, sku)
    changes = body.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None:
            raise _null(field)
        setattr(product, field, value)
    session.flush()
    _record(session, principal, "product", sku, "update", changes)
    return product_out(product)
