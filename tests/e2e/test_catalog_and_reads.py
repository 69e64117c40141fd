"""The catalog and read contract of API.md: warehouses, products, stock levels, the ledger, jobs."""

from datetime import datetime, timedelta, timezone

import httpx
import pytest

from tests.support.client import create_catalog, submit, unique, wait_for_jobs


def assert_problem(r: httpx.Response, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == f"/problems/{slug}"
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def run(client: httpx.Client, command: dict) -> dict:
    """Submit one command and wait for its job to end."""
    job_id = submit(client, command)
    return wait_for_jobs(client, [job_id])[job_id]


def walk(client: httpx.Client, path: str, params: dict | None = None, limit: int = 3,
         between_pages=None) -> list[dict]:
    """Every item of a list, page by page; `between_pages(n)` runs after page n is fetched."""
    items: list[dict] = []
    cursor = None
    for n in range(10_000):
        r = client.get(path, params={**(params or {}), "limit": limit,
                                     **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"}
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
        assert body["items"], "a page with a next cursor has items"
        if between_pages:
            between_pages(n)
    raise AssertionError("pagination did not end")


def parse_time(value: str) -> datetime:
    assert value.endswith("Z") and len(value) == len("2026-11-23T10:00:00.123Z"), value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def shown(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------------------------------------
# Catalog

def test_warehouse_create_get_duplicate_and_unknown(client):
    code = unique("W")
    r = client.post("/v1/warehouses", json={"code": code, "name": "Seoul 1", "address": "1 Main St"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert {k: created[k] for k in ("code", "name", "address", "active")} == {
        "code": code, "name": "Seoul 1", "address": "1 Main St", "active": True}
    assert parse_time(created["created_at"]) <= parse_time(created["updated_at"])
    assert "id" not in created  # integrations never see database ids

    assert client.get(f"/v1/warehouses/{code}").json() == created

    again = client.post("/v1/warehouses", json={"code": code, "name": "Other"})
    assert_problem(again, 409, "conflict")
    assert client.get(f"/v1/warehouses/{code}").json()["name"] == "Seoul 1"

    assert_problem(client.get(f"/v1/warehouses/{unique('NOPE')}"), 404, "not-found")
    assert_problem(client.patch(f"/v1/warehouses/{unique('NOPE')}", json={"name": "x"}), 404, "not-found")


def test_warehouse_patch_changes_only_the_fields_given(client):
    code = unique("W")
    created = client.post("/v1/warehouses", json={"code": code, "name": "Before"}).json()
    assert created["address"] is None

    steps = [({"name": "After"}, {"name": "After", "address": None, "active": True}),
             ({"address": "2 Side St"}, {"name": "After", "address": "2 Side St", "active": True}),
             ({"active": False}, {"name": "After", "address": "2 Side St", "active": False}),
             ({}, {"name": "After", "address": "2 Side St", "active": False}),
             ({"address": None, "active": True}, {"name": "After", "address": None, "active": True})]
    for patch, expected in steps:
        r = client.patch(f"/v1/warehouses/{code}", json=patch)
        assert r.status_code == 200, r.text
        body = r.json()
        assert {k: body[k] for k in expected} == expected, patch
        assert body["code"] == code and body["created_at"] == created["created_at"]
        assert client.get(f"/v1/warehouses/{code}").json() == body
    assert parse_time(body["updated_at"]) >= parse_time(created["updated_at"])


def test_product_create_get_patch_duplicate_and_unknown(client):
    sku = unique("SKU")
    r = client.post("/v1/products", json={"sku": sku, "name": "Book"})
    assert r.status_code == 201, r.text
    created = r.json()
    assert {k: created[k] for k in ("sku", "name", "unit")} == {"sku": sku, "name": "Book", "unit": "unit"}
    assert client.get(f"/v1/products/{sku}").json() == created

    assert_problem(client.post("/v1/products", json={"sku": sku, "name": "Again"}), 409, "conflict")

    r = client.patch(f"/v1/products/{sku}", json={"unit": "box"})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["unit"]) == ("Book", "box")
    r = client.patch(f"/v1/products/{sku}", json={"name": "Big book"})
    assert (r.json()["name"], r.json()["unit"]) == ("Big book", "box")
    assert client.get(f"/v1/products/{sku}").json() == r.json()

    with_unit = client.post("/v1/products", json={"sku": unique("SKU"), "name": "Rice", "unit": "kg"})
    assert with_unit.status_code == 201 and with_unit.json()["unit"] == "kg"

    assert_problem(client.get(f"/v1/products/{unique('NOPE')}"), 404, "not-found")
    assert_problem(client.patch(f"/v1/products/{unique('NOPE')}", json={"name": "x"}), 404, "not-found")


@pytest.mark.parametrize(("path", "key", "make"), [
    ("/v1/warehouses", "code", lambda c: {"code": c, "name": f"Warehouse {c}"}),
    ("/v1/products", "sku", lambda c: {"sku": c, "name": f"Product {c}"}),
], ids=["warehouses", "products"])
def test_catalog_list_pages_are_unique_ordered_and_stable_under_inserts(client, path, key, make):
    mine = [unique("PG") for _ in range(7)]
    for code in mine:
        assert client.post(path, json=make(code)).status_code == 201

    default = client.get(path).json()
    assert len(default["items"]) <= 100
    assert client.get(path, params={"limit": 1000}).status_code == 200
    # Other tests add thousands of products, so pages are sized to keep the walk to a few dozen calls.
    first = walk(client, path, limit=97)
    codes = [item[key] for item in first]
    assert len(codes) == len(set(codes)), "an item appeared twice"
    assert [c for c in codes if c in mine] == mine, "creation order, nothing skipped"
    assert [item[key] for item in walk(client, path, limit=160)] == codes, "order is stable"

    # Rows inserted while a client walks the list: nothing seen twice, nothing existing skipped,
    # and the new rows (newer ids) still come, at the end.
    inserted: list[str] = []

    def insert(page: int) -> None:
        if page >= 5:
            return
        code = unique("PG")
        assert client.post(path, json=make(code)).status_code == 201
        inserted.append(code)

    during = [item[key] for item in walk(client, path, limit=120, between_pages=insert)]
    assert len(during) == len(set(during))
    assert during == codes + inserted


def test_inactive_warehouse_accepts_no_new_commands(client):
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    assert client.patch(f"/v1/warehouses/{warehouse}", json={"active": False}).status_code == 200

    job = run(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 5})
    assert job["status"] == "failed"
    assert job["error"]["type"] == "/problems/inactive-warehouse"
    assert "result" not in job
    level = client.get(f"/v1/stock/{warehouse}/{sku}").json()
    assert (level["on_hand"], level["version"]) == (0, 0)
    assert client.get("/v1/ledger", params={"warehouse": warehouse}).json()["items"] == []

    assert client.patch(f"/v1/warehouses/{warehouse}", json={"active": True}).status_code == 200
    job = run(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 5})
    assert job["status"] == "succeeded", job
    assert job["result"] == {"on_hand_after": 5, "version_after": 1}


# ---------------------------------------------------------------------------------------------
# Stock levels and the ledger

def test_known_level_that_never_moved_is_zero_and_unknown_is_404(client):
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    r = client.get(f"/v1/stock/{warehouse}/{sku}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("warehouse", "sku", "on_hand", "version")} == {
        "warehouse": warehouse, "sku": sku, "on_hand": 0, "version": 0}
    as_of = client.get(f"/v1/stock/{warehouse}/{sku}", params={"as_of": "2020-01-01T00:00:00Z"}).json()
    assert (as_of["on_hand"], as_of["version"]) == (0, 0)

    assert_problem(client.get(f"/v1/stock/{unique('NOPE')}/{sku}"), 404, "not-found")
    assert_problem(client.get(f"/v1/stock/{warehouse}/{unique('NOPE')}"), 404, "not-found")
    # A sku used as a warehouse code, and the other way round, is no match either.
    assert_problem(client.get(f"/v1/stock/{sku}/{warehouse}"), 404, "not-found")


@pytest.fixture
def moved(client) -> dict:
    """receive 10, issue 3, adjust -2 (damaged), count 20 on a fresh level, one job at a time."""
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    key = {"warehouse": warehouse, "sku": sku}
    commands = [{"type": "receive", **key, "quantity": 10, "reference": "PO-1"},
                {"type": "issue", **key, "quantity": 3, "reference": "SO-1"},
                {"type": "adjust", **key, "delta": -2, "reason": "damaged"},
                {"type": "count", **key, "on_hand": 20}]
    jobs = []
    for command in commands:
        job = run(client, command)
        assert job["status"] == "succeeded", job
        jobs.append(job)
    return {**key, "jobs": jobs}


EXPECTED_MOVES = [  # type, delta, on_hand_after, version, reference, reason
    ("receive", 10, 10, 1, "PO-1", None),
    ("issue", -3, 7, 2, "SO-1", None),
    ("adjust", -2, 5, 3, None, "damaged"),
    ("count", 15, 20, 4, None, None),
]


def ledger(client: httpx.Client, **params) -> list[dict]:
    r = client.get("/v1/ledger", params=params)
    assert r.status_code == 200, r.text
    assert r.json()["next_cursor"] is None
    return r.json()["items"]


def test_level_jobs_and_ledger_after_four_movements(client, moved):
    warehouse, sku, jobs = moved["warehouse"], moved["sku"], moved["jobs"]
    level = client.get(f"/v1/stock/{warehouse}/{sku}").json()
    assert (level["on_hand"], level["version"]) == (20, 4)
    parse_time(level["updated_at"])

    assert [j["result"] for j in jobs] == [{"on_hand_after": a, "version_after": v}
                                           for _, _, a, v, _, _ in EXPECTED_MOVES]
    for job in jobs:
        assert job["kind"] == "command" and "error" not in job
        assert parse_time(job["submitted_at"]) <= parse_time(job["completed_at"])

    entries = ledger(client, warehouse=warehouse, sku=sku)
    assert [(e["type"], e["delta"], e["on_hand_after"], e["version"], e["reference"], e["reason"])
            for e in entries] == EXPECTED_MOVES
    assert [e["job_id"] for e in entries] == [j["job_id"] for j in jobs]
    assert all(e["warehouse"] == warehouse and e["sku"] == sku and e["line"] is None for e in entries)
    ids = [e["id"] for e in entries]
    assert ids == sorted(ids) and len(set(ids)) == 4, "oldest first"
    times = [parse_time(e["recorded_at"]) for e in entries]
    assert times == sorted(times)

    # The same entries by one filter at a time.
    assert ledger(client, warehouse=warehouse) == entries
    assert ledger(client, sku=sku) == entries
    for entry in entries:
        assert ledger(client, warehouse=warehouse, type=entry["type"]) == [entry]
        assert ledger(client, job_id=entry["job_id"]) == [entry]
    assert ledger(client, warehouse=warehouse, sku=sku, type="transfer_in") == []
    assert ledger(client, warehouse=warehouse, sku=unique("NOPE")) == []


def test_as_of_gives_the_level_as_it_was(client, moved):
    warehouse, sku = moved["warehouse"], moved["sku"]
    entries = ledger(client, warehouse=warehouse, sku=sku)

    def at(when: str) -> tuple[int, int]:
        r = client.get(f"/v1/stock/{warehouse}/{sku}", params={"as_of": when})
        assert r.status_code == 200, r.text
        return r.json()["on_hand"], r.json()["version"]

    for entry in entries:
        # The time exactly as shown: the entry itself is in.
        assert at(entry["recorded_at"]) == (entry["on_hand_after"], entry["version"]), entry
    first = parse_time(entries[0]["recorded_at"])
    assert at(shown(first - timedelta(milliseconds=1))) == (0, 0)
    assert at("2000-01-01T00:00:00Z") == (0, 0)
    assert at("2999-01-01T00:00:00Z") == (20, 4)
    # Another offset naming the same instant gives the same answer.
    seoul = parse_time(entries[1]["recorded_at"]).astimezone(timezone(timedelta(hours=9)))
    assert at(seoul.isoformat(timespec="milliseconds")) == (7, 2)


def test_ledger_since_until_and_pagination(client, moved):
    warehouse, sku = moved["warehouse"], moved["sku"]
    entries = ledger(client, warehouse=warehouse, sku=sku)
    times = [e["recorded_at"] for e in entries]

    # since is inclusive, until exclusive, both at the time shown.
    assert ledger(client, warehouse=warehouse, since=times[1]) == entries[1:]
    assert ledger(client, warehouse=warehouse, until=times[2]) == entries[:2]
    assert ledger(client, warehouse=warehouse, since=times[1], until=times[3]) == entries[1:3]
    assert ledger(client, warehouse=warehouse, since=times[3], until=times[3]) == []
    assert ledger(client, warehouse=warehouse, until=times[0]) == []
    assert ledger(client, warehouse=warehouse, since="2999-01-01T00:00:00Z") == []

    pages = []
    r = client.get("/v1/ledger", params={"warehouse": warehouse, "sku": sku, "limit": 2})
    while True:
        body = r.json()
        pages.append(body["items"])
        if body["next_cursor"] is None:
            break
        r = client.get("/v1/ledger", params={"warehouse": warehouse, "sku": sku, "limit": 2,
                                             "cursor": body["next_cursor"]})
    assert [len(p) for p in pages] == [2, 2]
    assert [e for p in pages for e in p] == entries
    assert walk(client, "/v1/ledger", {"warehouse": warehouse}, limit=1) == entries


def test_stock_list_filtered_by_warehouse_and_by_sku(client):
    w1, w2, s1, s2 = unique("W"), unique("W"), unique("SKU"), unique("SKU")
    create_catalog(client, [w1, w2], [s1, s2])
    untouched = unique("SKU")
    create_catalog(client, [], [untouched])
    jobs = [submit(client, {"type": "receive", "warehouse": w, "sku": s, "quantity": q})
            for w, s, q in [(w1, s1, 1), (w1, s2, 2), (w2, s1, 3)]]
    assert {j["status"] for j in wait_for_jobs(client, jobs).values()} == {"succeeded"}

    def levels(**params) -> list[tuple[str, str, int, int]]:
        """Walked one item per page; the walk must match the one-page listing, in its order."""
        walked = [(i["warehouse"], i["sku"], i["on_hand"], i["version"])
                  for i in walk(client, "/v1/stock", params, limit=1)]
        listed = [(i["warehouse"], i["sku"], i["on_hand"], i["version"])
                  for i in client.get("/v1/stock", params=params).json()["items"]]
        assert walked == listed
        # Levels are listed in the order they were created, and the two e2e workers share every
        # shard queue, so which of these jobs ran first is not fixed: compare contents.
        return sorted(walked)

    assert levels(warehouse=w1) == sorted([(w1, s1, 1, 1), (w1, s2, 2, 1)])
    assert levels(warehouse=w2) == [(w2, s1, 3, 1)]
    assert levels(sku=s1) == sorted([(w1, s1, 1, 1), (w2, s1, 3, 1)])
    assert levels(warehouse=w2, sku=s2) == []
    assert levels(sku=untouched) == [], "a level that never moved is not listed"
    assert levels(warehouse=unique("NOPE")) == []
    for item in client.get("/v1/stock", params={"warehouse": w1}).json()["items"]:
        parse_time(item["updated_at"])


def test_transfer_moves_stock_between_warehouses(client):
    source, target, sku = unique("W"), unique("W"), unique("SKU")
    create_catalog(client, [source, target], [sku])
    assert run(client, {"type": "receive", "warehouse": source, "sku": sku, "quantity": 8})["status"] \
        == "succeeded"

    job = run(client, {"type": "transfer", "from_warehouse": source, "to_warehouse": target,
                       "sku": sku, "quantity": 5, "reference": "TR-1"})
    assert job["status"] == "succeeded", job
    assert job["result"] == {"from": {"on_hand_after": 3, "version_after": 2},
                             "to": {"on_hand_after": 5, "version_after": 1}}

    moves = ledger(client, job_id=job["job_id"])
    assert [(e["warehouse"], e["type"], e["delta"], e["on_hand_after"], e["version"], e["reference"])
            for e in moves] == [(source, "transfer_out", -5, 3, 2, "TR-1"),
                                (target, "transfer_in", 5, 5, 1, "TR-1")]
    assert ledger(client, sku=sku, type="transfer_in") == moves[1:]
    assert ledger(client, sku=sku, type="transfer_out") == moves[:1]
    assert client.get(f"/v1/stock/{source}/{sku}").json()["on_hand"] == 3
    assert client.get(f"/v1/stock/{target}/{sku}").json()["on_hand"] == 5


# ---------------------------------------------------------------------------------------------
# Jobs and operations

def test_job_is_found_and_unknown_job_is_404(client):
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    job_id = submit(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 2})
    job = wait_for_jobs(client, [job_id])[job_id]
    assert job["job_id"] == job_id and job["kind"] == "command" and job["status"] == "succeeded"
    assert job["result"] == {"on_hand_after": 2, "version_after": 1}
    assert "owner" not in job

    assert_problem(client.get("/v1/jobs/00000000-0000-0000-0000-000000000000"), 404, "not-found")
    assert_problem(client.get("/v1/jobs/not-a-job"), 404, "not-found")


def test_operations_endpoints(client):
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "# TYPE" in metrics.text
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    assert "/v1/commands" in spec.json()["paths"]
