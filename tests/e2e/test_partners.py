"""Partners share the service, not each other's data (issue 18): one test per finding of the hostile
partner's tour, each failing on the code before the issue, and the warehouse limit.

Header limits and the server's connection limits are tested in tests/e2e/test_http_limits.py, free
text in tests/e2e/test_text.py, the offline docs in tests/e2e/test_docs_offline.py, compose and log
redaction in tests/unit.
"""

import socket
import time
import uuid

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.api_keys import create_key
from shared.db import session_scope
from shared.models import ApiKey, CatalogChange, Job, Warehouse
from tests.e2e.conftest import make_key
from tests.support.client import create_catalog, submit, unique, wait_for_jobs


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def limited_key(scopes: set[str], warehouses: set[str]) -> str:
    with session_scope() as session:
        return create_key(session, name="limited", scopes=frozenset(scopes), warehouses=frozenset(warehouses))


def jobs_of(db: Session, key_header: dict[str, str]) -> int:
    db.rollback()
    prefix = key_header["Authorization"].split("_")[1]
    return db.scalar(select(func.count()).select_from(Job).join(ApiKey, ApiKey.id == Job.api_key_id)
                     .where(ApiKey.prefix == prefix))


@pytest.fixture(scope="module")
def partners(api_url: str, workers: list) -> dict:
    """Two partners' warehouses and a shared product, made by a catalog key."""
    w1, w2, sku = unique("P1"), unique("P2"), unique("PS")
    owner = bearer(make_key({"read", "write", "catalog"}, "owner"))
    with httpx.Client(base_url=api_url, timeout=30, headers=owner) as c:
        create_catalog(c, [w1, w2], [sku])
        job = submit(c, {"type": "receive", "warehouse": w2, "sku": sku, "quantity": 50,
                         "reference": "PO-secret-A"})
        wait_for_jobs(c, [job])
    return {"w1": w1, "w2": w2, "sku": sku, "owner": owner, "owner_job": job, "url": api_url}


def client_for(partners: dict, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=partners["url"], timeout=30, headers=headers)


# ---------------------------------------------------------------------------------------------
# Finding: any `write` key could change the shared catalog.

def test_a_write_key_cannot_deactivate_a_warehouse_or_rename_a_product(partners, db):
    """Finding: a partner's write key deactivated another partner's warehouse (PATCH active=false
    answered 200) and renamed a product. Catalog writes now need the `catalog` scope."""
    with client_for(partners, bearer(make_key({"read", "write"}, "partner"))) as partner:
        r = partner.patch(f"/v1/warehouses/{partners['w2']}", json={"active": False})
        assert r.status_code == 403 and r.json()["type"] == "/problems/forbidden", r.text
        r = partner.patch(f"/v1/products/{partners['sku']}", json={"name": "hijacked", "unit": "kg"})
        assert r.status_code == 403 and r.json()["required_scope"] == "catalog", r.text
    db.rollback()
    assert db.scalar(select(Warehouse.active).where(Warehouse.code == partners["w2"])) is True


def test_catalog_changes_record_the_key_that_made_them(partners, db):
    """Finding (the same): catalog changes record the key that made them."""
    code = unique("CC")
    key = make_key({"catalog"}, "cataloguer")
    with client_for(partners, bearer(key)) as c:
        assert c.post("/v1/warehouses", json={"code": code, "name": "Songpa"}).status_code == 201
        assert c.patch(f"/v1/warehouses/{code}", json={"active": False}).status_code == 200
    db.rollback()
    changes = db.execute(select(CatalogChange.action, CatalogChange.changes, CatalogChange.api_key_id)
                         .where(CatalogChange.kind == "warehouse", CatalogChange.code == code)
                         .order_by(CatalogChange.id)).all()
    assert [(action, body) for action, body, _ in changes] == [
        ("create", {"code": code, "name": "Songpa", "address": None}), ("update", {"active": False})]
    key_id = db.scalar(select(ApiKey.id).where(ApiKey.prefix == key.split("_")[1]))
    assert {changed_by for _, _, changed_by in changes} == {key_id}


# ---------------------------------------------------------------------------------------------
# Finding: a read key saw other partners' jobs in the ledger.

def test_another_keys_job_is_not_found_in_the_ledger_and_its_ids_read_null(partners):
    """Finding: `GET /v1/ledger?job_id=<another key's job>` answered 200 with that job's entries and
    its reference ("PO-secret-A"), although /v1/jobs/<id> answered 404 to that key."""
    with client_for(partners, bearer(make_key({"read"}, "reader"))) as reader:
        assert reader.get(f"/v1/jobs/{partners['owner_job']}").status_code == 404
        r = reader.get("/v1/ledger", params={"job_id": partners["owner_job"]})
        assert r.status_code == 200 and r.json()["items"] == [], r.text
        entries = reader.get("/v1/ledger", params={"warehouse": partners["w2"]}).json()["items"]
        assert entries and all(e["job_id"] is None and e["reference"] is None for e in entries)
        assert "PO-secret-A" not in reader.get("/v1/ledger", params={"limit": 1000}).text
    with client_for(partners, partners["owner"]) as owner:
        mine = owner.get("/v1/ledger", params={"job_id": partners["owner_job"]}).json()["items"]
        assert [e["reference"] for e in mine] == ["PO-secret-A"]
    with client_for(partners, bearer(make_key({"admin"}, "admin"))) as admin:
        seen = admin.get("/v1/ledger", params={"job_id": partners["owner_job"]}).json()["items"]
        assert [e["job_id"] for e in seen] == [partners["owner_job"]]


# ---------------------------------------------------------------------------------------------
# Finding: the body was read and parsed before the key was checked.

def _answer_without_sending_the_body(url: str, method: str, path: str, headers: dict[str, str],
                                     length: int, timeout: float = 3.0) -> bytes:
    """Send a request's headers announcing a body of `length` bytes, none of the body, and return
    what the server answers within `timeout` seconds (b"" if nothing)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json",
                 f"Content-Length: {length}", *[f"{k}: {v}" for k, v in headers.items()], "", ""]
        sock.sendall("\r\n".join(lines).encode())
        try:
            return sock.recv(65536)
        except TimeoutError:
            return b""


@pytest.mark.parametrize(("path", "length"), [("/v1/batches", 7_200_000), ("/v1/commands", 60_000),
                                              ("/v1/warehouses", 60_000)])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sk_0123456789ab_not-the-secret"}])
def test_a_request_without_a_valid_key_is_answered_before_its_body_arrives(partners, path, length,
                                                                           headers):
    """Finding: unauthenticated 7.2 MB POSTs to /v1/batches took 0.14 s each before their 401 (the
    body was read and parsed first). Now the 401 comes before a byte of the body has been sent
    (a body declared over its route's limit gets its 413 as soon, test_only_batches_take...)."""
    started = time.monotonic()
    answer = _answer_without_sending_the_body(partners["url"], "POST", path, headers, length)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert time.monotonic() - started < 2


def test_a_key_without_the_scope_is_answered_before_its_body_arrives(partners):
    """Finding (the same): the scope is decided before the body too."""
    reader = bearer(make_key({"read"}, "reader"))
    answer = _answer_without_sending_the_body(partners["url"], "POST", "/v1/batches", reader, 7_200_000)
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]


def test_only_batches_take_the_large_body_limit(partners, db):
    """Finding: the 8 MB body limit applied to every route. A single command or a catalog entry
    over the small limit (64 KiB) is refused; a batch of that size is accepted."""
    line = {"type": "receive", "warehouse": partners["w1"], "sku": partners["sku"], "quantity": 1,
            "reference": "r" * 190}
    with client_for(partners, partners["owner"]) as owner:
        padded = b'{"type": "receive"' + b" " * 70_000 + b', "warehouse": "W", "sku": "S", "quantity": 1}'
        r = owner.post("/v1/commands", content=padded, headers={"content-type": "application/json"})
        assert r.status_code == 413 and r.json()["max_body_bytes"] == 64 * 1024, r.text
        r = owner.post("/v1/warehouses", content=padded, headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        batch = owner.post("/v1/batches", json={"mode": "atomic", "commands": [line] * 400})
        assert len(batch.request.content) > 64 * 1024
        assert batch.status_code == 202, batch.text


# ---------------------------------------------------------------------------------------------
# Finding: invalid keys were never rate-limited.

def test_keys_that_are_not_valid_are_rate_limited_per_client_address(partners):
    """Finding: invalid keys were never rate-limited (each cost an HMAC and a lookup). From one
    address, after a burst of them, the next gets 429 with Retry-After; another address, and a valid
    key this process knows from the same address, still get through."""
    good = make_key({"read"}, "good")
    # One connection, so one API process counts them; an address of this test's own.
    attacker = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=partners["url"], transport=attacker, timeout=30) as c:
        assert c.get("/v1/stock", headers=bearer(good)).status_code == 200  # now known to the process
        statuses = [c.get("/v1/stock", headers=bearer(f"sk_{uuid.uuid4().hex[:12]}_guess")).status_code
                    for _ in range(40)]
        assert statuses[:10] == [401] * 10 and 429 in statuses, statuses
        r = c.get("/v1/stock", headers=bearer(f"sk_{uuid.uuid4().hex[:12]}_guess"))
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["type"] == "/problems/rate-limited"
        assert c.get("/v1/stock", headers=bearer(good)).status_code == 200
    other = httpx.HTTPTransport(local_address="127.0.0.3")
    with httpx.Client(base_url=partners["url"], transport=other, timeout=30) as c:
        assert c.get("/v1/stock", headers=bearer("sk_0123456789ab_guess")).status_code == 401


# ---------------------------------------------------------------------------------------------
# Keys limited to warehouses.

def test_a_limited_key_submits_nothing_that_names_another_warehouse(partners, db):
    """A key limited to warehouses: commands and batch lines naming another warehouse (transfers:
    either side) are refused whole with 403 naming the lines, and nothing is queued."""
    w1, w2, sku = partners["w1"], partners["w2"], partners["sku"]
    headers = bearer(limited_key({"read", "write"}, {w1}))
    before = jobs_of(db, headers)
    receive = {"type": "receive", "warehouse": w1, "sku": sku, "quantity": 5}
    with client_for(partners, headers) as limited:
        transfer = {"type": "transfer", "sku": sku, "quantity": 1}
        for command in ({**receive, "warehouse": w2},
                        {**transfer, "from_warehouse": w1, "to_warehouse": w2},
                        {**transfer, "from_warehouse": w2, "to_warehouse": w1}):
            for extra in ({}, {"Idempotency-Key": unique("k")}):  # the fast path and the route
                r = limited.post("/v1/commands", json=command, headers=extra)
                assert r.status_code == 403, r.text
                assert r.json()["type"] == "/problems/forbidden-warehouse"
                assert r.json()["warehouses"] == [w2]
        lines = [receive, {**receive, "warehouse": w2},
                 {"type": "transfer", "from_warehouse": w1, "to_warehouse": w2, "sku": sku, "quantity": 1}]
        r = limited.post("/v1/batches", json={"mode": "independent", "commands": lines})
        assert r.status_code == 403, r.text
        assert r.json()["lines"] == [1, 2] and r.json()["line_count"] == 2
        assert jobs_of(db, headers) == before  # nothing queued
        job = submit(limited, receive)
        assert wait_for_jobs(limited, [job])[job]["status"] == "succeeded"


def test_a_limited_key_reads_its_warehouses_only(partners):
    """Stock and ledger reads of a limited key are filtered to its warehouses: another warehouse's
    level is 404, lists leave it out; so do the warehouse reads."""
    w1, w2, sku = partners["w1"], partners["w2"], partners["sku"]
    with client_for(partners, bearer(limited_key({"read"}, {w1}))) as limited:
        assert limited.get(f"/v1/stock/{w2}/{sku}").status_code == 404
        assert limited.get(f"/v1/stock/{w1}/{sku}").status_code == 200
        assert limited.get(f"/v1/warehouses/{w2}").status_code == 404
        assert limited.get(f"/v1/warehouses/{w1}").status_code == 200
        for path, params in [("/v1/stock", {}), ("/v1/ledger", {}), ("/v1/stock", {"warehouse": w2}),
                             ("/v1/ledger", {"warehouse": w2}), ("/v1/ledger", {"sku": sku}),
                             ("/v1/warehouses", {})]:
            items = limited.get(path, params={**params, "limit": 1000}).json()["items"]
            assert all(item.get("warehouse", item.get("code")) == w1 for item in items), (path, params)
        entries = limited.get("/v1/ledger", params={"sku": sku}).json()["items"]
        assert all(e["job_id"] is None for e in entries)  # the owner's receipts, not its own


def test_a_limited_catalog_key_writes_its_warehouses_only(partners):
    """A limited key with the catalog scope changes only its warehouses (products are shared)."""
    w1, w2 = partners["w1"], partners["w2"]
    with client_for(partners, bearer(limited_key({"catalog"}, {w1}))) as limited:
        r = limited.patch(f"/v1/warehouses/{w2}", json={"active": False})
        assert r.status_code == 403 and r.json()["type"] == "/problems/forbidden-warehouse", r.text
        assert limited.post("/v1/warehouses", json={"code": unique("X"), "name": "x"}).status_code == 403
        assert limited.patch(f"/v1/warehouses/{w1}", json={"name": "mine"}).status_code == 200


def _all_events(client: httpx.Client) -> list[dict]:
    """Every event the key may see, following the feed to its head."""
    events: list[dict] = []
    cursor = None
    for _ in range(500):
        params = {"limit": 1000, **({"after": cursor} if cursor else {})}
        page = client.get("/v1/events", params=params).json()
        events += page["items"]
        if page["next_cursor"] == cursor:
            return events
        cursor = page["next_cursor"]
    raise AssertionError("the feed did not end")


def test_the_warehouse_limit_holds_for_events_webhooks_and_reorder_points(partners):
    """Events, webhook subscriptions and reorder points go through the same warehouse limit: a
    limited key reads stock events of its warehouses only (others' job ids null), subscribes to its
    warehouses only, and sets reorder points of its warehouses only."""
    w1, w2, sku = partners["w1"], partners["w2"], partners["sku"]
    with client_for(partners, bearer(make_key({"read"}, "all-warehouses"))) as unlimited:
        assert any(e["type"] == "stock.changed" and e["data"]["warehouse"] == w2
                   for e in _all_events(unlimited)), "the other warehouse's events exist"
    with client_for(partners, bearer(limited_key({"read", "catalog", "webhooks"}, {w1}))) as limited:
        stock_events = [e["data"] for e in _all_events(limited) if e["type"] == "stock.changed"]
        assert all(data["warehouse"] == w1 for data in stock_events)
        assert all(data.get("job_id") is None and data.get("reference") is None for data in stock_events)
        r = limited.post("/v1/webhooks", json={"url": "https://receiver.invalid/hook",
                                               "events": ["stock.changed"], "warehouses": [w1, w2]})
        assert r.status_code == 403 and r.json()["warehouses"] == [w2], r.text
        r = limited.put(f"/v1/stock/{w2}/{sku}/reorder-point", json={"reorder_point": 5})
        assert r.status_code == 403 and r.json()["type"] == "/problems/forbidden-warehouse", r.text
        r = limited.put(f"/v1/stock/{w1}/{sku}/reorder-point", json={"reorder_point": 5})
        assert r.status_code == 200, r.text
