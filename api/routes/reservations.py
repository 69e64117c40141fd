"""`GET /v1/reservations/{id}`: a reservation as it stands. Ids are the client's, unique per API key,
so a key reads only its own (another key's id is simply not found). A key limited to warehouses
sees its reservations of those warehouses only."""

from typing import Annotated, cast

from fastapi import APIRouter, Path
from sqlalchemy import select

from api.auth import GuardedRoute, Reader
from api.deps import SessionDep
from api.problems import not_found
from api.schemas import ReservationOut, ReservationStatus
from shared import warehouse_limit
from shared.clock import rfc3339
from shared.models import Product, Reservation, StockLevel, Warehouse
from shared.schemas.commands import RESERVATION_ID_PATTERN

ReservationPath = Annotated[str, Path(pattern=RESERVATION_ID_PATTERN, description="The client's id.")]
router = APIRouter(prefix="/v1", tags=["reservations"], route_class=GuardedRoute)


@router.get("/reservations/{reservation}", response_model=ReservationOut, summary="Get a reservation")
def get_reservation(reservation: ReservationPath, session: SessionDep, principal: Reader) -> ReservationOut:
    row = session.execute(
        select(Reservation, Warehouse.code, Product.sku)
        .join(StockLevel, StockLevel.id == Reservation.stock_level_id)
        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
        .join(Product, Product.id == StockLevel.product_id)
        .where(Reservation.api_key_id == principal.key_id, Reservation.client_id == reservation)).first()
    if row is None or not warehouse_limit.may_see(principal, row[1]):
        raise not_found(f"Reservation {reservation!r}")
    held, warehouse, sku = row
    return ReservationOut(reservation=held.client_id, warehouse=warehouse, sku=sku, quantity=held.quantity,
                          committed=held.committed, expires_at=rfc3339(held.expires_at),
                          # The column holds a str; only these four are written (shared/stock/holds.py),
                          # and the model checks it.
                          status=cast(ReservationStatus, held.status))
