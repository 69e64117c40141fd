"""Stock and ledger as CSV (`Accept: text/csv`, issue 21): the same rows, filters and warehouse limits as
the JSON reads, formula-leading text quoted, numbers left as numbers, and a large export streamed."""

import csv
import io

import httpx
import pytest
from sqlalchemy import insert, text
from sqlalchemy.orm import Session

from shared.api_keys import create_key
from shared.db import session_scope
from shared.models import Product
from tests.e2e.conftest import make_key
from tests.support.client import create_catalog, submit, unique, wait_for_jobs

CSV = {"Accept": "text/csv"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def limited_key(scopes: set[str], warehouses: set[str]) -> str:
    with session_scope() as session:
        return create_key(session, name="limited", scopes=frozenset(scopes),
                          warehouses=frozenset(warehouses))


def export(client: httpx.Client, path: str, **params) -> list[dict[str, str]]:
    """The CSV rows as dicts; the header must be the JSON items' keys, in their order."""
    r = client.get(path, params=params, headers=CSV)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == f'attachment; filename="{path.rsplit("/", 1)[-1]}.csv"'
    assert "accept" in r.headers["vary"].lower()
    rows = list(csv.reader(io.StringIO(r.text, newline="")))
    header, body = rows[0], rows[1:]
    return [dict(zip(header, row, strict=True)) for row in body]


def walk_json(client: httpx.Client, path: str, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        r = client.get(path, params={**params, "limit": 1000, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        if (cursor := r.json()["next_cursor"]) is None:
            return items


def as_cells(item: dict) -> dict[str, str]:
    """A JSON item as its CSV row reads back: null empty, numbers as digits, formula text quoted."""
    def one(v) -> str:
        if v is None:
            return ""
        if isinstance(v, str) and v.startswith(FORMULA_STARTS):
            return "'" + v
        return str(v)
    return {k: one(v) for k, v in item.items()}


def same_as_json(client: httpx.Client, path: str, **params) -> list[dict[str, str]]:
    """Export, check it against the JSON read of the same filters, and return the rows."""
    rows = export(client, path, **params)
    items = walk_json(client, path, **params)
    if items:
        assert list(rows[0]) == list(items[0])
    assert rows == [as_cells(i) for i in items]
    return rows


@pytest.fixture
def moved(client) -> dict:
    """Two levels of one warehouse moved by four commands, and a level of another warehouse."""
    w1, w2, s1, s2 = unique("W"), unique("W"), unique("SKU"), unique("SKU")
    create_catalog(client, [w1, w2], [s1, s2])
    commands = [{"type": "receive", "warehouse": w1, "sku": s1, "quantity": 10, "reference": "PO-1"},
                {"type": "issue", "warehouse": w1, "sku": s1, "quantity": 3, "reference": "SO-1"},
                {"type": "adjust", "warehouse": w1, "sku": s1, "delta": -2, "reason": "damaged"},
                {"type": "receive", "warehouse": w1, "sku": s2, "quantity": 4},
                {"type": "receive", "warehouse": w2, "sku": s1, "quantity": 6}]
    for command in commands:  # one at a time: the ledger's order is the commands' order
        job = submit(client, command)
        assert wait_for_jobs(client, [job])[job]["status"] == "succeeded"
    return {"w1": w1, "w2": w2, "s1": s1, "s2": s2}


def test_csv_rows_are_the_json_items_with_the_same_filters(client, moved):
    w1, w2, s1, s2 = moved["w1"], moved["w2"], moved["s1"], moved["s2"]
    stock = same_as_json(client, "/v1/stock", warehouse=w1)
    assert sorted((r["sku"], r["on_hand"], r["available"]) for r in stock) == sorted(
        [(s1, "5", "5"), (s2, "4", "4")])
    assert [r["warehouse"] for r in same_as_json(client, "/v1/stock", sku=s1)] == [w1, w2]
    assert len(same_as_json(client, "/v1/stock", warehouse=w2, sku=s1)) == 1
    assert same_as_json(client, "/v1/stock", warehouse=w2, sku=s2) == []

    ledger = same_as_json(client, "/v1/ledger", warehouse=w1, sku=s1)
    assert [(r["type"], r["delta"], r["on_hand_after"], r["version"]) for r in ledger] == [
        ("receive", "10", "10", "1"), ("issue", "-3", "7", "2"), ("adjust", "-2", "5", "3")]
    assert all(r["job_id"] for r in ledger), "the key's own jobs are shown"
    assert len(same_as_json(client, "/v1/ledger", warehouse=w1)) == 4
    assert len(same_as_json(client, "/v1/ledger", sku=s1)) == 4
    assert len(same_as_json(client, "/v1/ledger", warehouse=w1, type="receive")) == 2
    assert len(same_as_json(client, "/v1/ledger", job_id=ledger[1]["job_id"])) == 1
    assert len(same_as_json(client, "/v1/ledger", warehouse=w1, since=ledger[1]["recorded_at"],
                            until=ledger[2]["recorded_at"])) == 1

    # limit does not cut an export; a cursor from a JSON page starts it after that page.
    assert len(export(client, "/v1/ledger", warehouse=w1, limit=1)) == 4
    first = client.get("/v1/ledger", params={"warehouse": w1, "limit": 1}).json()
    rest = export(client, "/v1/ledger", warehouse=w1, cursor=first["next_cursor"])
    assert [r["id"] for r in rest] == [r["id"] for r in export(client, "/v1/ledger", warehouse=w1)][1:]


def test_json_stays_the_default_and_errors_stay_problems(client, moved):
    for accept in ("*/*", "application/json", "text/csv;q=0.5, application/json", "text/html"):
        r = client.get("/v1/stock", params={"warehouse": moved["w1"]}, headers={"Accept": accept})
        assert r.status_code == 200 and r.headers["content-type"] == "application/json", accept
        assert "accept" in r.headers["vary"].lower()
    r = client.get("/v1/ledger", params={"cursor": "nonsense"}, headers=CSV)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    r = client.get("/v1/ledger", params={"type": "nonsense"}, headers=CSV)
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    r = httpx.get(str(client.base_url.join("/v1/stock")), headers=CSV)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")


def test_a_limited_key_exports_its_warehouses_only_and_no_other_keys_jobs(client, moved):
    w1, w2, s1 = moved["w1"], moved["w2"], moved["s1"]
    with httpx.Client(base_url=client.base_url, timeout=30,
                      headers=bearer(limited_key({"read", "write"}, {w2}))) as limited:
        own = submit(limited, {"type": "receive", "warehouse": w2, "sku": s1, "quantity": 1,
                               "reference": "mine"})
        wait_for_jobs(limited, [own])
        for path, params in [("/v1/stock", {}), ("/v1/stock", {"sku": s1}), ("/v1/ledger", {}),
                             ("/v1/ledger", {"sku": s1}), ("/v1/ledger", {"warehouse": w1})]:
            rows = same_as_json(limited, path, **params)
            assert all(r["warehouse"] == w2 for r in rows), (path, params)
        ledger = same_as_json(limited, "/v1/ledger", sku=s1)
        assert [(r["job_id"], r["reference"]) for r in ledger] == [("", ""), (own, "mine")]
        assert export(limited, "/v1/stock", warehouse=w1) == []

    # Any key but an unlimited admin key sees other keys' job ids and references empty.
    with httpx.Client(base_url=client.base_url, timeout=30,
                      headers=bearer(make_key({"read"}, "reader"))) as reader:
        rows = same_as_json(reader, "/v1/ledger", warehouse=w1, sku=s1)
        assert {(r["job_id"], r["reference"]) for r in rows} == {("", "")}
    with httpx.Client(base_url=client.base_url, timeout=30,
                      headers=bearer(make_key({"admin"}, "admin"))) as admin:
        rows = same_as_json(admin, "/v1/ledger", warehouse=w1, sku=s1)
        assert [r["reference"] for r in rows] == ["PO-1", "SO-1", ""] and all(r["job_id"] for r in rows)


def test_formula_leading_text_is_quoted_and_numbers_are_not(client, db: Session):
    # Codes may start with "-"; free text may not any more, but rows written before that rule may.
    warehouse, sku = unique("-W"), unique("-S")
    create_catalog(client, [warehouse], [sku])
    job = submit(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 9})
    wait_for_jobs(client, [job])
    job = submit(client, {"type": "adjust", "warehouse": warehouse, "sku": sku, "delta": -4,
                          "reason": "damaged"})
    wait_for_jobs(client, [job])
    db.execute(text("UPDATE ledger_entry SET reference = :ref, reason = :reason WHERE job_id = :job"),
               {"ref": '=HYPERLINK("http://evil.example","x")', "reason": "@SUM(A1)\t+1", "job": job})
    db.commit()
    r = client.get("/v1/ledger", params={"warehouse": warehouse}, headers=CSV)
    assert f",'{warehouse},'{sku}," in r.text and ",-4," in r.text  # as written, before any reader
    rows = export(client, "/v1/ledger", warehouse=warehouse)
    assert [(r["warehouse"][0], r["sku"][0], r["delta"]) for r in rows] == [("'", "'", "9"), ("'", "'", "-4")]
    assert rows[1]["reference"] == "'=HYPERLINK(\"http://evil.example\",\"x\")"
    assert rows[1]["reason"] == "'@SUM(A1)\t+1"
    assert rows == [as_cells(i) for i in walk_json(client, "/v1/ledger", warehouse=warehouse)]
    assert f"\r\n'{warehouse},'{sku},5," in client.get(
        "/v1/stock", params={"warehouse": warehouse}, headers=CSV).text
    stock = export(client, "/v1/stock", warehouse=warehouse)
    assert [(r["warehouse"], r["sku"], r["on_hand"]) for r in stock] == [(f"'{warehouse}", f"'{sku}", "5")]
    for prefix in ("+", "\t", "\r"):  # the other starts, stored as a reason
        db.execute(text("UPDATE ledger_entry SET reason = :reason WHERE job_id = :job"),
                   {"reason": f"{prefix}x", "job": job})
        db.commit()
        assert export(client, "/v1/ledger", warehouse=warehouse)[1]["reason"] == f"'{prefix}x"


LARGE = 2_500  # more than two of the export's 1,000-row chunks


def test_a_large_export_streams_every_row(client, db: Session):
    warehouse, prefix = unique("BIG"), unique("BIGSKU")
    create_catalog(client, [warehouse], [])
    skus = [f"{prefix}-{n:05d}" for n in range(LARGE)]
    db.execute(insert(Product), [{"sku": s, "name": f"Product {s}"} for s in skus])
    db.commit()
    commands = [{"type": "receive", "warehouse": warehouse, "sku": s, "quantity": n + 1}
                for n, s in enumerate(skus)]
    r = client.post("/v1/batches", json={"mode": "atomic", "commands": commands})
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    assert wait_for_jobs(client, [job], timeout=120)[job]["status"] == "succeeded"

    for path in ("/v1/stock", "/v1/ledger"):
        with client.stream("GET", path, params={"warehouse": warehouse}, headers=CSV) as r:
            assert r.status_code == 200
            assert "content-length" not in r.headers, "streamed, not built whole"
            assert r.headers["transfer-encoding"] == "chunked"
            body = "".join(r.iter_text())
        rows = list(csv.DictReader(io.StringIO(body, newline="")))
        assert len(rows) == LARGE, path
        assert sorted(r["sku"] for r in rows) == skus
        moved = sum(int(r["on_hand" if path == "/v1/stock" else "delta"]) for r in rows)
        assert moved == LARGE * (LARGE + 1) // 2
        assert len(same_as_json(client, path, warehouse=warehouse)) == LARGE
