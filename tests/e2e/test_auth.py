"""API keys and scopes: who may read, write and see which jobs; revocation is effective at once."""

import re
import subprocess
import sys

import httpx
import pytest
from sqlalchemy import select

from shared.models import ApiKey, Job, LedgerEntry
from tests.e2e.conftest import make_key
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import ROOT


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_problem(r: httpx.Response, status: int, slug: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == f"/problems/{slug}"


@pytest.fixture
def anonymous(api_url, workers):
    with httpx.Client(base_url=api_url, timeout=30) as c:
        yield c


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer sk_nope_nope"}, {"Authorization": "Bearer " + "x" * 300},
])
@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/warehouses"), ("GET", "/v1/stock"), ("GET", "/v1/ledger"),
    ("GET", "/v1/jobs/00000000-0000-0000-0000-000000000000"),
    ("POST", "/v1/commands"), ("POST", "/v1/batches"), ("POST", "/v1/products"),
])
def test_missing_or_invalid_key_is_401(anonymous, headers, method, path):
    body = {"type": "receive", "warehouse": "W", "sku": "S", "quantity": 1} if method == "POST" else None
    r = anonymous.request(method, path, headers=headers, json=body)
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


def test_a_key_with_a_right_secret_but_wrong_prefix_or_secret_is_401(anonymous):
    key = make_key({"read"})
    _, prefix, secret = key.split("_", 2)
    for forged in (f"sk_{prefix}_{secret[:-1]}x", f"sk_{prefix}x_{secret}", f"sk_{prefix}_"):
        assert_problem(anonymous.get("/v1/stock", headers=bearer(forged)), 401, "unauthorized")
    assert anonymous.get("/v1/stock", headers=bearer(key)).status_code == 200


def test_scopes_are_enforced_with_403(anonymous):
    reader, writer = bearer(make_key({"read"})), bearer(make_key({"write"}))
    cataloguer = bearer(make_key({"catalog"}))
    command = {"type": "receive", "warehouse": "W", "sku": "S", "quantity": 1}
    assert_problem(anonymous.post("/v1/commands", json=command, headers=reader), 403, "forbidden")
    assert_problem(anonymous.post("/v1/batches", json={"mode": "atomic", "commands": [command]},
                                  headers=reader), 403, "forbidden")
    assert_problem(anonymous.post("/v1/warehouses", json={"code": unique("W"), "name": "x"},
                                  headers=reader), 403, "forbidden")
    assert_problem(anonymous.get("/v1/stock", headers=writer), 403, "forbidden")
    assert_problem(anonymous.post("/v1/commands", json=command, headers=cataloguer), 403, "forbidden")
    assert anonymous.get("/v1/stock", headers=reader).status_code == 200
    assert anonymous.post("/v1/warehouses", json={"code": unique("W"), "name": "x"},
                          headers=cataloguer).status_code == 201


def test_jobs_are_visible_only_to_their_key_and_admin_keys(anonymous, db):
    partner_a = bearer(make_key({"read", "write", "catalog"}))
    partner_b = bearer(make_key({"read", "write"}))
    admin = bearer(make_key({"admin"}))
    warehouse, sku = unique("W"), unique("SKU")
    with httpx.Client(base_url=str(anonymous.base_url), headers=partner_a, timeout=30) as a:
        create_catalog(a, [warehouse], [sku])
        job_id = submit(a, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 3})
        wait_for_jobs(a, [job_id])
        assert a.get(f"/v1/jobs/{job_id}/lines").status_code == 200

    assert_problem(anonymous.get(f"/v1/jobs/{job_id}", headers=partner_b), 404, "not-found")
    assert_problem(anonymous.get(f"/v1/jobs/{job_id}/lines", headers=partner_b), 404, "not-found")
    assert anonymous.get(f"/v1/jobs/{job_id}", headers=admin).json()["status"] == "succeeded"

    # The key that sent the command is on the job and on its ledger entry.
    db.rollback()
    owner = db.scalar(select(Job.api_key_id).where(Job.id == job_id))
    assert owner is not None
    assert db.scalar(select(LedgerEntry.api_key_id).where(LedgerEntry.job_id == job_id)) == owner


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli.keys", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_cli_creates_a_key_once_stores_only_a_hash_and_revokes_at_once(anonymous, db):
    created = _cli("create", "--name", "partner-cli", "--scopes", "read")
    assert created.returncode == 0, created.stderr
    key = re.search(r"sk_[0-9a-f]+_\S+", created.stdout).group(0)
    prefix, secret = key.split("_", 2)[1:]
    assert anonymous.get("/v1/stock", headers=bearer(key)).status_code == 200

    db.rollback()
    stored = db.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    assert stored.scopes == "read" and secret not in stored.secret_hash
    listing = _cli("list")
    assert prefix in listing.stdout and secret not in listing.stdout

    assert _cli("revoke", prefix).returncode == 0
    assert_problem(anonymous.get("/v1/stock", headers=bearer(key)), 401, "unauthorized")
    assert _cli("revoke", prefix).returncode == 1  # already revoked
    assert _cli("create", "--name", "x", "--scopes", "root").returncode != 0


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"])
def test_operational_routes_need_no_key(anonymous, path):
    assert anonymous.get(path).status_code == 200


def test_no_cors_headers_by_default(anonymous, auth):
    r = anonymous.get("/v1/stock", headers={**auth, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
