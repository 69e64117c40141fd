"""Bad input of every kind gets a 4xx problem+json (never a 5xx) and writes nothing."""

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.models import Job, LedgerEntry, Product, StockLevel, Warehouse
from tests.support.client import create_catalog, unique

TABLES = (Job, LedgerEntry, StockLevel, Warehouse, Product)
JSON = {"content-type": "application/json"}
MAX_BODY_BYTES = 8 * 1024 * 1024


@pytest.fixture(scope="module")
def known(api_url: str, workers: list, auth: dict[str, str]) -> dict[str, str]:
    """A warehouse and a product that exist, so only the one bad field is wrong in each case."""
    names = {"w": unique("BADW"), "s": unique("BADS")}
    with httpx.Client(base_url=api_url, timeout=30, headers=auth) as c:
        create_catalog(c, [names["w"]], [names["s"]])
    return names


def counts(db: Session) -> dict[str, int]:
    db.rollback()  # a fresh snapshot
    return {m.__tablename__: db.scalar(select(func.count()).select_from(m)) for m in TABLES}


def catalog_rows(db: Session, known: dict[str, str]) -> tuple:
    """The known rows themselves: a bad PATCH must not change them (it adds no row to count)."""
    w = db.scalars(select(Warehouse).where(Warehouse.code == known["w"])).one()
    p = db.scalars(select(Product).where(Product.sku == known["s"])).one()
    return (w.name, w.address, w.active, w.updated_at), (p.name, p.unit, p.updated_at)


@pytest.fixture
def unchanged(db: Session, known: dict[str, str]) -> Iterator[None]:
    before = counts(db), catalog_rows(db, known)
    yield
    after = counts(db), catalog_rows(db, known)
    assert after == before


def assert_problem(r: httpx.Response, status: int | None = None, slug: str | None = None) -> dict:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:500])
    if status is not None:
        assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == r.status_code
    assert body["type"].startswith("/problems/") and body["title"] and body["detail"]
    if slug is not None:
        assert body["type"] == f"/problems/{slug}", body
    if r.status_code == 422:
        assert body["type"] == "/problems/validation-error", body
        assert body["errors"] and all({"loc", "msg", "type"} <= e.keys() for e in body["errors"])
    return body


# ---------------------------------------------------------------------------------------------
# JSON bodies that parse but are not valid: 422 validation-error (with `errors`).

W, S = "{w}", "{s}"  # filled in with the known warehouse and sku
RECEIVE = {"type": "receive", "warehouse": W, "sku": S, "quantity": 5}
ADJUST = {"type": "adjust", "warehouse": W, "sku": S, "delta": -2, "reason": "damaged"}
COUNT = {"type": "count", "warehouse": W, "sku": S, "on_hand": 4}
TRANSFER = {"type": "transfer", "from_warehouse": W, "to_warehouse": "OTHER", "sku": S, "quantity": 1}
BAD_VALUES = {"zero": 0, "negative": -1, "string": "5", "float": 5.0, "bool": True, "null": None,
              "list": [5], "huge": 10**30, "over-max": 1_000_000_001}
BAD_CODES = {"empty": "", "too-long": "W" * 33, "space": "A B", "slash": "A/B", "non-ascii": "Ä1",
             "emoji": "\U0001F4E6", "number": 5, "null": None, "list": ["A"]}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != key}


COMMANDS = {
    **{f"quantity-{name}": with_(RECEIVE, quantity=v) for name, v in BAD_VALUES.items()},
    **{f"warehouse-{name}": with_(RECEIVE, warehouse=v) for name, v in BAD_CODES.items()},
    "sku-too-long": with_(RECEIVE, sku="S" * 65),
    "sku-bad-char": with_(RECEIVE, sku="SKU*1"),
    "quantity-missing": without(RECEIVE, "quantity"),
    "type-unknown": with_(RECEIVE, type="teleport"),
    "type-missing": without(RECEIVE, "type"),
    "type-wrong-case": with_(RECEIVE, type="RECEIVE"),
    "type-number": with_(RECEIVE, type=1),
    "unknown-field": with_(RECEIVE, colour="red"),
    "field-of-other-type": with_(RECEIVE, delta=5),
    "reference-too-long": with_(RECEIVE, reference="r" * 201),
    "reference-number": with_(RECEIVE, reference=7),
    "reason-empty": with_(RECEIVE, reason=""),
    "issue-negative": {"type": "issue", "warehouse": W, "sku": S, "quantity": -3},
    "adjust-zero": with_(ADJUST, delta=0),
    "adjust-string": with_(ADJUST, delta="-2"),
    "adjust-huge": with_(ADJUST, delta=-(10**30)),
    "adjust-no-reason": without(ADJUST, "reason"),
    "adjust-quantity-instead": with_(without(ADJUST, "delta"), quantity=2),
    "count-negative": with_(COUNT, on_hand=-1),
    "count-huge": with_(COUNT, on_hand=10**30),
    "count-float": with_(COUNT, on_hand=4.0),
    "transfer-same-warehouse": with_(TRANSFER, to_warehouse=W),
    "transfer-missing-target": without(TRANSFER, "to_warehouse"),
    "transfer-zero": with_(TRANSFER, quantity=0),
    "expected-on-hand-negative": with_(RECEIVE, expected_on_hand=-1),
    "expected-version-string": with_(RECEIVE, expected_version="1"),
    "expected-version-huge": with_(RECEIVE, expected_version=10**30),
    "empty-object": {},
}

BATCHES = {
    "mode-unknown": {"mode": "sometimes", "commands": [RECEIVE]},
    "mode-missing": {"commands": [RECEIVE]},
    "mode-bool": {"mode": True, "commands": [RECEIVE]},
    "commands-empty": {"mode": "atomic", "commands": []},
    "commands-object": {"mode": "atomic", "commands": RECEIVE},
    "commands-null": {"mode": "atomic", "commands": None},
    "commands-of-numbers": {"mode": "atomic", "commands": [5]},
    "bad-line": {"mode": "independent", "commands": [RECEIVE, with_(RECEIVE, quantity=0)]},
    "unknown-type-line": {"mode": "atomic", "commands": [with_(RECEIVE, type="steal")]},
    "unknown-field": {"mode": "atomic", "commands": [RECEIVE], "priority": 1},
}

WAREHOUSE = {"code": "NEW-W", "name": "New warehouse"}
WAREHOUSES = {
    **{f"code-{name}": with_(WAREHOUSE, code=v) for name, v in BAD_CODES.items()},
    "code-missing": without(WAREHOUSE, "code"),
    "name-missing": without(WAREHOUSE, "name"),
    "name-empty": with_(WAREHOUSE, name=""),
    "name-too-long": with_(WAREHOUSE, name="n" * 201),
    "name-number": with_(WAREHOUSE, name=5),
    "name-null": with_(WAREHOUSE, name=None),
    "address-too-long": with_(WAREHOUSE, address="a" * 501),
    "address-list": with_(WAREHOUSE, address=["Main St"]),
    "unknown-field": with_(WAREHOUSE, manager="Kim"),
    "active-not-settable": with_(WAREHOUSE, active=False),
}

PRODUCT = {"sku": "NEW-S", "name": "New product"}
PRODUCTS = {
    "sku-too-long": with_(PRODUCT, sku="S" * 65),
    "sku-space": with_(PRODUCT, sku="S 1"),
    "sku-empty": with_(PRODUCT, sku=""),
    "sku-number": with_(PRODUCT, sku=1001),
    "sku-missing": without(PRODUCT, "sku"),
    "name-too-long": with_(PRODUCT, name="n" * 201),
    "name-bool": with_(PRODUCT, name=True),
    "unit-empty": with_(PRODUCT, unit=""),
    "unit-too-long": with_(PRODUCT, unit="u" * 33),
    "unit-null": with_(PRODUCT, unit=None),
    "unknown-field": with_(PRODUCT, price=9.99),
}

WAREHOUSE_PATCHES = {
    "name-empty": {"name": ""},
    "name-null": {"name": None},
    "name-too-long": {"name": "n" * 201},
    "active-string": {"active": "false"},
    "active-int": {"active": 0},
    "active-null": {"active": None},
    "address-too-long": {"address": "a" * 501},
    "code-not-patchable": {"code": "RENAMED"},
    "unknown-field": {"colour": "red"},
}

PRODUCT_PATCHES = {
    "name-null": {"name": None},
    "name-number": {"name": 5},
    "unit-null": {"unit": None},
    "unit-too-long": {"unit": "u" * 33},
    "sku-not-patchable": {"sku": "RENAMED"},
    "unknown-field": {"weight": 3},
}

INVALID = [
    *[("POST", "/v1/commands", body, name) for name, body in COMMANDS.items()],
    *[("POST", "/v1/batches", body, name) for name, body in BATCHES.items()],
    *[("POST", "/v1/warehouses", body, name) for name, body in WAREHOUSES.items()],
    *[("POST", "/v1/products", body, name) for name, body in PRODUCTS.items()],
    *[("PATCH", "/v1/warehouses/{w}", body, name) for name, body in WAREHOUSE_PATCHES.items()],
    *[("PATCH", "/v1/products/{s}", body, name) for name, body in PRODUCT_PATCHES.items()],
]


def fill(value: Any, known: dict[str, str]) -> Any:
    """The body with the {w}/{s} placeholders replaced by the known warehouse and sku."""
    if isinstance(value, str):
        return {W: known["w"], S: known["s"]}.get(value, value)
    if isinstance(value, dict):
        return {k: fill(v, known) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, known) for v in value]
    return value


@pytest.mark.parametrize(("method", "path", "body"),
                         [pytest.param(m, p, b, id=f"{m} {p} {n}") for m, p, b, n in INVALID])
def test_invalid_body_is_a_422_problem_and_writes_nothing(client, known, unchanged, method, path, body):
    r = client.request(method, path.format(**known), json=fill(body, known))
    assert_problem(r, 422, "validation-error")


# ---------------------------------------------------------------------------------------------
# Bodies that are not a JSON object at all.

BODY_ROUTES = [("POST", "/v1/commands"), ("POST", "/v1/batches"), ("POST", "/v1/warehouses"),
               ("POST", "/v1/products"), ("PATCH", "/v1/warehouses/{w}"), ("PATCH", "/v1/products/{s}")]

RAW = {
    # name: (content, headers, status, slug); a None status is any 4xx
    "truncated-json": (b'{"type": ', JSON, 400, "malformed-json"),
    "trailing-comma": (b'{"type": "receive",}', JSON, 400, "malformed-json"),
    "single-quotes": (b"{'type': 'receive'}", JSON, 400, "malformed-json"),
    "not-utf8": (b'{"type": "\xff\xfe"}', JSON, 400, "malformed-json"),
    "too-deep": (b"[" * 30_000 + b"]" * 30_000, JSON, 400, "malformed-json"),
    "5000-digit-number": (b'{"quantity": ' + b"9" * 5000 + b"}", JSON, 400, "malformed-json"),
    "empty-body": (b"", JSON, 422, "validation-error"),
    "whitespace-only": (b"   ", JSON, 400, "malformed-json"),
    "list": (b"[1, 2]", JSON, 422, "validation-error"),
    "number": (b"5", JSON, 422, "validation-error"),
    "string": (b'"receive"', JSON, 422, "validation-error"),
    "null": (b"null", JSON, 422, "validation-error"),
    "text-plain": (b'{"name": "x"}', {"content-type": "text/plain"}, None, None),
    "form-encoded": (b"name=x", {"content-type": "application/x-www-form-urlencoded"}, None, None),
    "xml": (b"<name>x</name>", {"content-type": "application/xml"}, None, None),
}


@pytest.mark.parametrize(("method", "path"), [pytest.param(m, p, id=f"{m} {p}") for m, p in BODY_ROUTES])
@pytest.mark.parametrize("raw", list(RAW))
def test_body_that_is_not_a_json_object_is_a_4xx_problem_and_writes_nothing(
        client, known, unchanged, method, path, raw):
    content, headers, status, slug = RAW[raw]
    r = client.request(method, path.format(**known), content=content, headers=headers)
    assert_problem(r, status, slug)


# ---------------------------------------------------------------------------------------------
# Query parameters.

def cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


LISTS = ["/v1/warehouses", "/v1/products", "/v1/stock", "/v1/ledger"]
BAD_PAGING = {
    "limit-0": {"limit": "0"},
    "limit-1001": {"limit": "1001"},
    "limit-negative": {"limit": "-1"},
    "limit-text": {"limit": "ten"},
    "limit-float": {"limit": "10.5"},
    "limit-empty": {"limit": ""},
    "limit-huge": {"limit": str(10**30)},
    "cursor-garbage": {"cursor": "!!not-a-cursor!!"},
    "cursor-empty": {"cursor": ""},
    "cursor-not-json": {"cursor": base64.urlsafe_b64encode(b"after=5").decode()},
    "cursor-negative": {"cursor": cursor_of({"after": -1})},
    "cursor-float": {"cursor": cursor_of({"after": 1.5})},
    "cursor-string-id": {"cursor": cursor_of({"after": "5"})},
    "cursor-bool": {"cursor": cursor_of({"after": True})},
    "cursor-list": {"cursor": cursor_of([5])},
    "cursor-no-after": {"cursor": cursor_of({"before": 5})},
    "cursor-too-long": {"cursor": "A" * 201},
    "cursor-non-ascii": {"cursor": "é" * 8},
}
BAD_FILTERS = [
    ("/v1/ledger", {"type": "steal"}),
    ("/v1/ledger", {"type": "RECEIVE"}),
    ("/v1/ledger", {"type": "transfer"}),
    ("/v1/ledger", {"since": "yesterday"}),
    ("/v1/ledger", {"since": "2026-13-01T00:00:00Z"}),
    ("/v1/ledger", {"until": "2026-02-30T00:00:00Z"}),
    ("/v1/ledger", {"since": "0001-01-01T00:00:00+01:00"}),
    ("/v1/ledger", {"until": "9999-12-31T23:59:59-01:00"}),
    ("/v1/ledger", {"since": ""}),
    ("/v1/ledger", {"job_id": "j" * 37}),
    ("/v1/ledger", {"warehouse": "W" * 65}),
    ("/v1/ledger", {"sku": "S" * 65}),
    ("/v1/stock", {"warehouse": "W" * 65}),
    ("/v1/stock", {"sku": "S" * 65}),
    ("/v1/stock/{w}/{s}", {"as_of": "yesterday"}),
    ("/v1/stock/{w}/{s}", {"as_of": ""}),
    ("/v1/stock/{w}/{s}", {"as_of": "2026-02-30T10:00:00Z"}),
    ("/v1/stock/{w}/{s}", {"as_of": "2026-11-23T25:00:00Z"}),
    ("/v1/stock/{w}/{s}", {"as_of": "1e20"}),
    ("/v1/stock/{w}/{s}", {"as_of": "0001-01-01T00:00:00+01:00"}),
    ("/v1/stock/{w}/{s}", {"as_of": "9999-12-31T23:59:59-01:00"}),
]
QUERIES = [
    *[pytest.param(path, params, id=f"{path} {name}")
      for path in LISTS for name, params in BAD_PAGING.items()],
    *[pytest.param(path, params, id=f"{path} {params}") for path, params in BAD_FILTERS],
]


@pytest.mark.parametrize(("path", "params"), QUERIES)
def test_bad_query_parameter_is_a_422_problem(client, known, unchanged, path, params):
    r = client.get(path.format(**known), params=params)
    body = assert_problem(r, 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [["query", next(iter(params))]]


# ---------------------------------------------------------------------------------------------
# Size limits.

def _oversized_command(known: dict[str, str]) -> bytes:
    # Valid apart from its size, so only the limit can turn it away.
    body = json.dumps(with_(fill(RECEIVE, known), reference="x" * (9 * 1000 * 1000))).encode()
    assert len(body) > MAX_BODY_BYTES
    return body


@pytest.mark.parametrize("path", ["/v1/commands", "/v1/batches", "/v1/warehouses"])
def test_body_over_the_size_limit_is_a_413_problem(client, known, unchanged, path):
    r = client.post(path, content=_oversized_command(known), headers=JSON)
    assert_problem(r, 413, "payload-too-large")


def test_chunked_body_over_the_size_limit_is_a_413_problem(client, known, unchanged):
    # No Content-Length: the limit is found by counting, after FastAPI has started reading.
    body = _oversized_command(known)
    chunks = (body[i:i + 65536] for i in range(0, len(body), 65536))
    r = client.post("/v1/commands", content=chunks, headers=JSON)
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload-too-large")


def test_batch_over_max_batch_lines_is_a_413_problem(client, known, unchanged):
    line = fill(RECEIVE, known)
    r = client.post("/v1/batches", json={"mode": "independent", "commands": [line] * 10_001})
    body = assert_problem(r, 413, "payload-too-large")
    assert body["max_batch_lines"] == 10_000
