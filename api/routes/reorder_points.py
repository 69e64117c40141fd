"""A level's reorder point: below it, its available quantity announces `stock.low` (once per
crossing, shared/events/stock.py). Scope `catalog`: it is the stock plan, not a stock movement."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field
from sqlalchemy import insert, select, update

from api import examples
from api.auth import GuardedRoute, require
from api.deps import SessionDep
from api.problems import ProblemError, not_found
from api.schemas import StockOut
from shared import warehouse_limit
from shared.api_keys import Principal
from shared.clock import rfc3339
from shared.db import rows_matched
from shared.models import Product, StockLevel, Warehouse, utcnow
from shared.schemas.commands import MAX_LEVEL, Code, Sku

router = APIRouter(prefix="/v1", tags=["stock"], route_class=GuardedRoute)


class ReorderPointIn(BaseModel):
    model_config = {"extra": "forbid", "strict": True}

    reorder_point: Annotated[int, Field(ge=0, le=MAX_LEVEL)] | None


@router.put("/stock/{warehouse}/{sku}/reorder-point", response_model=StockOut,
            summary="Set or clear a level's reorder point")
def set_reorder_point(warehouse: Code, sku: Sku,
                      body: Annotated[ReorderPointIn, Body(openapi_examples=examples.REORDER_POINT)],
                      session: SessionDep,
                      principal: Annotated[Principal, Depends(require("catalog"))]) -> StockOut:
    refused = warehouse_limit.warehouse_refusal(principal, warehouse)
    if refused is not None:
        raise ProblemError(refused)
    warehouse_id = session.scalar(select(Warehouse.id).where(Warehouse.code == warehouse))
    product_id = session.scalar(select(Product.id).where(Product.sku == sku))
    if warehouse_id is None or product_id is None:
        raise not_found(f"Stock level {warehouse}/{sku}")
    where = (StockLevel.warehouse_id == warehouse_id, StockLevel.product_id == product_id)
    changed = session.execute(update(StockLevel).where(*where).values(reorder_point=body.reorder_point))
    if rows_matched(changed) == 0:
        # A level that never moved: its row, at 0, holds the reorder point (the apply path keeps it).
        session.execute(insert(StockLevel).prefix_with("IGNORE", dialect="mysql")
                        .prefix_with("IGNORE", dialect="mariadb").prefix_with("OR IGNORE", dialect="sqlite"),
                        {"warehouse_id": warehouse_id, "product_id": product_id, "on_hand": 0, "version": 0,
                         "reorder_point": body.reorder_point, "updated_at": utcnow()})
        session.execute(update(StockLevel).where(*where).values(reorder_point=body.reorder_point))
    level = session.execute(select(StockLevel).where(*where)).scalar_one()
    return StockOut(warehouse=warehouse, sku=sku, on_hand=level.on_hand, reserved=level.reserved,
                    version=level.version,
                    updated_at=rfc3339(level.updated_at) if level.version else None,
                    reorder_point=level.reorder_point)
