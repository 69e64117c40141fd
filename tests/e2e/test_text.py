"""Free text, JSON and path parameters a hostile partner sends (issue 18): refused with a problem,
writing nothing, through every entrance."""

import json

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.models import CatalogChange, Job, LedgerEntry, Product, Warehouse
from tests.support.client import create_catalog, unique

JSON = {"content-type": "application/json"}
BAD_TEXT = {
    "bidi-override": "PO-1\u202e2-OP",
    "zero-width-space": "PO\u200b-1",
    "c1-control": "PO-1\x85",
    "blank": "   ",
    "formula": '=HYPERLINK("http://evil.invalid","PO-1")',
}


@pytest.fixture(scope="module")
def known(api_url: str, workers: list, auth: dict[str, str]) -> dict[str, str]:
    names = {"w": unique("TXW"), "s": unique("TXS")}
    with httpx.Client(base_url=api_url, timeout=30, headers=auth) as c:
        create_catalog(c, [names["w"]], [names["s"]])
    return names


def counts(db: Session) -> dict[str, int]:
    db.rollback()
    return {m.__tablename__: db.scalar(select(func.count()).select_from(m))
            for m in (Job, LedgerEntry, Warehouse, Product, CatalogChange)}


def _problem(r: httpx.Response, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == f"/problems/{slug}"
    return r.json()


@pytest.mark.parametrize("text", list(BAD_TEXT.values()), ids=list(BAD_TEXT))
def test_free_text_with_controls_format_characters_blanks_or_formulas_is_refused(client, known, db, text):
    """Finding: free text took U+202E (bidi override), U+200B, C1 controls, blank names and
    `=HYPERLINK(...)`, while the README says no control characters."""
    before = counts(db)
    receive = {"type": "receive", "warehouse": known["w"], "sku": known["s"], "quantity": 1}
    attempts = [
        ("POST", "/v1/commands", {**receive, "reference": text}, {}),  # the fast path
        ("POST", "/v1/commands", {**receive, "reason": text}, {"Idempotency-Key": unique("k")}),  # the route
        ("POST", "/v1/batches", {"mode": "atomic", "commands": [{**receive, "reference": text}]}, {}),
        ("POST", "/v1/warehouses", {"code": unique("TX"), "name": text}, {}),
        ("POST", "/v1/warehouses", {"code": unique("TX"), "name": "ok", "address": text}, {}),
        ("PATCH", f"/v1/warehouses/{known['w']}", {"name": text}, {}),
        ("POST", "/v1/products", {"sku": unique("TX"), "name": "ok", "unit": text}, {}),
        ("PATCH", f"/v1/products/{known['s']}", {"name": text}, {}),
    ]
    for method, path, body, headers in attempts:
        _problem(client.request(method, path, json=body, headers=headers), 422, "validation-error")
    assert counts(db) == before


def test_a_body_with_a_key_twice_is_refused_not_applied_with_the_last(client, known, db):
    """Finding: a body with `"quantity": 1, "quantity": 100` was applied as 100."""
    before = counts(db)
    w, s = known["w"], known["s"]
    command = f'{{"type": "receive", "warehouse": "{w}", "sku": "{s}", "quantity": 1, "quantity": 100}}'
    bodies = [
        ("POST", "/v1/commands", command, {}),  # the fast path
        ("POST", "/v1/commands", command, {"Idempotency-Key": unique("k")}),  # the route
        ("POST", "/v1/batches", f'{{"mode": "atomic", "commands": [{command}]}}', {}),
        ("POST", "/v1/batches", '{"mode": "atomic", "mode": "independent", "commands": []}', {}),
        ("POST", "/v1/warehouses", f'{{"code": "{unique("TX")}", "name": "a", "name": "b"}}', {}),
        ("PATCH", f"/v1/warehouses/{w}", '{"active": true, "active": false}', {}),
    ]
    for method, path, body, headers in bodies:
        problem = _problem(client.request(method, path, content=body, headers={**JSON, **headers}),
                           400, "malformed-json")
        assert "appears twice" in problem["detail"]
    assert counts(db) == before
    assert client.get(f"/v1/warehouses/{w}").json()["active"] is True


@pytest.mark.parametrize("path", ["/v1/jobs/{id}", "/v1/jobs/{id}/lines", "/v1/warehouses/{id}",
                                  "/v1/products/{id}", "/v1/stock/{id}/S", "/v1/stock/W/{id}"])
def test_a_long_path_parameter_is_refused_not_echoed(client, path):
    """Finding: a 10 KB id was echoed back in the 404. Every path parameter is bounded."""
    long_id = "a" * 10_000
    r = client.get(path.format(id=long_id))
    assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith("application/problem+json")
    assert len(r.content) < 1000 and long_id[:100] not in r.text


def test_the_documented_text_pattern_is_in_the_openapi_document(client):
    spec = client.get("/openapi.json").json()
    name = spec["components"]["schemas"]["WarehouseCreate"]["properties"]["name"]
    assert "\\u202e" in name["pattern"] and name["minLength"] == 1
    assert json.dumps(spec).count("\\\\u200b") >= 4  # names, addresses, units, notes
