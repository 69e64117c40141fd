"""Request and response bodies of the synchronous routes."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.schemas.commands import Code, Sku

Name = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Address = Annotated[str, StringConstraints(max_length=500)]
Unit = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class StrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class WarehouseCreate(StrictBody):
    code: Code
    name: Name
    address: Address | None = None


class WarehouseUpdate(StrictBody):
    name: Name | None = None
    address: Address | None = None
    active: bool | None = None


class WarehouseOut(BaseModel):
    code: str
    name: str
    address: str | None
    active: bool
    created_at: str
    updated_at: str


class ProductCreate(StrictBody):
    sku: Sku
    name: Name
    unit: Unit = "unit"


class ProductUpdate(StrictBody):
    name: Name | None = None
    unit: Unit | None = None


class ProductOut(BaseModel):
    sku: str
    name: str
    unit: str
    created_at: str
    updated_at: str


class StockOut(BaseModel):
    warehouse: str
    sku: str
    on_hand: int
    version: int
    updated_at: str | None


class LedgerOut(BaseModel):
    id: int
    warehouse: str
    sku: str
    type: str
    delta: int
    on_hand_after: int
    version: int
    job_id: str
    line: int | None
    reference: str | None
    reason: str | None
    recorded_at: str


class Accepted(BaseModel):
    job_id: str
    kind: str
    status: str
    submitted_at: str


AsOf = datetime
