"""Request bodies of the catalog writes (warehouses, products). Here rather than in api/ because
the CSV import (cli/import_csv.py) checks its rows with the same rules the API applies."""

from pydantic import BaseModel, ConfigDict

from shared.schemas.commands import Code, Sku
from shared.schemas.text import free_text

# Free text: shared/schemas/text.py says what it may hold.
Name = free_text(200)
Address = free_text(500)
Unit = free_text(32)


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


class ProductCreate(StrictBody):
    sku: Sku
    name: Name
    unit: Unit = "unit"


class ProductUpdate(StrictBody):
    name: Name | None = None
    unit: Unit | None = None
