"""Example request bodies for the OpenAPI document (`/docs` shows them, and fuzzers start from them).
Each is a valid body: tests/unit/test_openapi.py checks that every operation with a body has one,
and that each example passes the body's own validation."""

from typing import Any

from fastapi.openapi.models import Example


def _examples(**bodies: tuple[str, Any]) -> dict[str, Example]:
    return {name: Example(summary=summary, value=value) for name, (summary, value) in bodies.items()}


COMMAND = _examples(
    receive=("Receive units", {"type": "receive", "warehouse": "SEL-1", "sku": "TEE-RED-M", "quantity": 24,
                               "reference": "PO-1042"}),
    issue=("Issue units", {"type": "issue", "warehouse": "SEL-1", "sku": "TEE-RED-M", "quantity": 2,
                           "reference": "ORDER-88121"}),
    adjust=("Adjust by a delta", {"type": "adjust", "warehouse": "SEL-1", "sku": "TEE-RED-M", "delta": -1,
                                  "reason": "damaged in handling"}),
    count=("Set a counted level", {"type": "count", "warehouse": "SEL-1", "sku": "TEE-RED-M",
                                   "on_hand": 21}),
    transfer=("Move units between warehouses", {"type": "transfer", "from_warehouse": "SEL-1",
                                                "to_warehouse": "BUS-2", "sku": "TEE-RED-M", "quantity": 5}),
    reserve=("Hold units for a checkout", {"type": "reserve", "warehouse": "SEL-1", "sku": "TEE-RED-M",
                                           "quantity": 1, "reservation": "cart-7f3a", "expires_in": 900}),
    commit=("Issue the held units", {"type": "commit", "reservation": "cart-7f3a"}),
    release=("Give the held units back", {"type": "release", "reservation": "cart-7f3a"}),
)

BATCH = _examples(
    receipt=("A delivery, all lines or none", {"mode": "atomic", "commands": [
        {"type": "receive", "warehouse": "SEL-1", "sku": "TEE-RED-M", "quantity": 24, "reference": "PO-1042"},
        {"type": "receive", "warehouse": "SEL-1", "sku": "TEE-RED-L", "quantity": 12, "reference": "PO-1042"},
    ]}),
    picks=("Independent lines: each succeeds or fails alone", {"mode": "independent", "commands": [
        {"type": "issue", "warehouse": "SEL-1", "sku": "TEE-RED-M", "quantity": 1},
        {"type": "issue", "warehouse": "BUS-2", "sku": "MUG-BLUE", "quantity": 3},
    ]}),
)

WAREHOUSE_CREATE = _examples(
    warehouse=("A warehouse", {"code": "SEL-1", "name": "Selby distribution centre",
                               "address": "Unit 4, Canal Road, Selby"}),
)
WAREHOUSE_UPDATE = _examples(
    rename=("A new name", {"name": "Selby DC"}),
    close=("No longer in use", {"active": False}),
)
PRODUCT_CREATE = _examples(
    product=("A product", {"sku": "TEE-RED-M", "name": "T-shirt, red, M", "unit": "piece"}),
)
PRODUCT_UPDATE = _examples(
    rename=("A new name", {"name": "T-shirt, red, size M"}),
)
REORDER_POINT = _examples(
    set=("Reorder below 10 units", {"reorder_point": 10}),
    clear=("No reorder point", {"reorder_point": None}),
)
SUBSCRIPTION = _examples(
    subscription=("Completed jobs and low stock in one warehouse", {
        "url": "https://erp.example.com/hooks/stock", "events": ["job.completed", "stock.low"],
        "warehouses": ["SEL-1"]}),
)
