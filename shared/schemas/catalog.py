"""Request bodies of the catalog writes (warehouses, products). Here rather than in api/ because
the CSV import (cli/import_csv.py) checks its rows with the same rules the API applies."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from shared.schemas.commands import Code, Sku
from shared.schemas.text import NO_CONTROLS_IN_SCHEMA, READABLE

# Free text: shared/schemas/text.py says what it may hold.
Name = Annotated[str, StringConstraints(min_length=1, max_length=200), READABLE, NO_CONTROLS_IN_SCHEMA]
Address = Annotated[str, StringConstraints(min_length=1, max_length=500), READABLE, NO_CONTROLS_IN_SCHEMA]
Unit = Annotated[str, StringConstraints(min_length=1, max_length=32), READABLE, NO_CONTROLS_IN_SCHEMA]


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
