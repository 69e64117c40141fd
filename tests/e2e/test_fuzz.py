"""Property-based fuzzing of the whole OpenAPI document against the real API and workers.

A short, derandomized run of bin/fuzz (schemathesis; see its header and tests/support/fuzz_hooks.py):
every operation, with generated valid and invalid input and odd headers, under an admin key, and
again under a key limited to warehouses. It fails on any 5xx,
any error that is not problem+json with its own status, any response the OpenAPI document does not
describe, and on books that do not balance once the workers have applied what the fuzzer queued.
The longer run is `bin/fuzz URL KEY` against `bin/run`.
"""

import os
import re
import subprocess
import sys
import time
import uuid

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.api_keys import create_key
from shared.db import session_scope
from shared.models import ApiKey, Job, LedgerEntry, StockLevel, Warehouse
from tests.e2e.conftest import assert_books_balance, make_key
from tests.support.client import create_catalog, wait_for_jobs
from tests.support.processes import LOGS, ROOT

MAX_EXAMPLES = 20  # per operation and phase: about a minute on two cores
SEED = 20261124


def _wait_until_no_job_is_pending(db: Session, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        db.rollback()  # a fresh snapshot
        pending = db.scalar(select(func.count()).select_from(Job)
                            .where(Job.status.in_(("queued", "running"))))
        if not pending:
            return
        assert time.monotonic() < deadline, f"{pending} job(s) still queued or running after {timeout}s"
        time.sleep(0.2)


def _failures(output: str, limit: int = 12_000) -> str:
    start = output.find("FAILURES")
    return output[start if start >= 0 else 0:][-limit:]


# Warnings are not failures: schemathesis notes operations whose ids it could not find (another
# key's jobs, webhook deliveries) or whose input the API mostly refused (the warehouse limit at work).
NO_FAILURES = r"No issues found|\d+ warnings?"


def _fuzz(api_url: str, key: str, name: str, max_examples: int, **settings: str) -> str:
    """bin/fuzz against the test API with this key; its output, once it has passed with no failure."""
    report_dir = LOGS / name
    env = {**os.environ, "PYTHON": sys.executable, "FUZZ_MAX_EXAMPLES": str(max_examples),
           "FUZZ_SEED": str(SEED), "FUZZ_DETERMINISTIC": "1",
           # One schemathesis worker: with two, Hypothesis parses lambda sources from two threads at
           # once and CPython 3.11 intermittently fails with "AST constructor recursion depth
           # mismatch", a tool crash that says nothing about the API.
           "FUZZ_WORKERS": "1",
           "FUZZ_PHASES": "examples,coverage,fuzzing,stateful", "FUZZ_DRAIN_SECONDS": "90",
           "FUZZ_REPORT_DIR": str(report_dir)}
    for variable in ("FUZZ_WAREHOUSES", "FUZZ_SKUS", "FUZZ_JOBS"):
        env.pop(variable, None)  # bin/fuzz seeds its own, unless given here
    env.update(settings)
    run = subprocess.run([str(ROOT / "bin" / "fuzz"), api_url, key], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / f"{name}.log").write_text(output)
    assert run.returncode == 0, f"bin/fuzz exited {run.returncode}:\n{_failures(output)}"
    assert re.search(rf"=+ (?:{NO_FAILURES}) in [\d.]+s =+", output), _failures(output)
    return output


def _moved_by_the_fuzzer(db: Session, like: str) -> int:
    """Ledger entries in the seeded warehouses beyond the seed's receives."""
    db.rollback()
    return db.scalar(select(func.count()).select_from(LedgerEntry)
                     .join(StockLevel, StockLevel.id == LedgerEntry.stock_level_id)
                     .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
                     .where(Warehouse.code.like(like), LedgerEntry.reference.is_(None)
                            | (LedgerEntry.reference != "fuzz seed")))


def test_fuzzing_every_operation_finds_no_5xx_no_bare_error_and_the_books_balance(
        api_url: str, workers: list, db: Session) -> None:
    """Under an admin key, with odd headers added to some requests (tests/support/fuzz_hooks.py)."""
    _fuzz(api_url, make_key({"admin"}, "fuzz"), "fuzz", MAX_EXAMPLES)

    # Independently of the script: nothing left pending, and every level equals its ledger.
    _wait_until_no_job_is_pending(db)
    assert_books_balance(db)
    # The fuzzer really moved stock in the seeded warehouses (beyond the seed's 9 receives).
    assert _moved_by_the_fuzzer(db, "FZ-%") > 0, "no generated command moved stock in the seeded warehouses"


def test_fuzzing_with_a_key_limited_to_warehouses(api_url: str, workers: list, auth: dict[str, str],
                                                 db: Session) -> None:
    """The same under a key limited to two of the three seeded warehouses, with the catalog scope:
    commands, batches and catalog writes aimed at the third are refused (403, documented), reads
    are filtered and other keys' job ids read null, all within the OpenAPI document."""
    run = uuid.uuid4().hex[:6]
    warehouses, skus = [f"FZL-{run}-W{n}" for n in range(3)], [f"FZL-{run}-S{n}" for n in range(3)]
    with httpx.Client(base_url=api_url, headers=auth, timeout=30) as owner:
        create_catalog(owner, warehouses, skus)
        seed = owner.post("/v1/batches", json={"mode": "atomic", "commands": [
            {"type": "receive", "warehouse": w, "sku": s, "quantity": 1000, "reference": "fuzz seed"}
            for w in warehouses for s in skus]}).json()["job_id"]
        wait_for_jobs(owner, [seed])
    with session_scope() as session:
        key = create_key(session, name="fuzz-limited", warehouses=frozenset(warehouses[:2]),
                         scopes=frozenset({"read", "write", "catalog", "webhooks"}))
    output = _fuzz(api_url, key, "fuzz-limited", MAX_EXAMPLES, FUZZ_WAREHOUSES=",".join(warehouses),
                   FUZZ_SKUS=",".join(skus), FUZZ_JOBS=seed)
    assert "seeded warehouses" not in output  # the codes given were used

    _wait_until_no_job_is_pending(db)
    assert_books_balance(db)
    assert _moved_by_the_fuzzer(db, f"FZL-{run}-W_") > 0
    db.rollback()
    key_id = db.scalar(select(ApiKey.id).where(ApiKey.prefix == key.split("_")[1]))
    foreign = db.scalar(select(func.count()).select_from(LedgerEntry)
                        .join(StockLevel, StockLevel.id == LedgerEntry.stock_level_id)
                        .join(Warehouse, Warehouse.id == StockLevel.warehouse_id)
                        .where(Warehouse.code == warehouses[2], LedgerEntry.api_key_id == key_id))
    assert foreign == 0, "the limited key moved stock in a warehouse it is not limited to"


# Found by the fuzzer, kept as plain regressions.

def test_a_number_is_not_a_time(client):
    # Pydantic alone reads `0.5` as half a second after 1970; API.md says times are RFC 3339.
    for path, params in [("/v1/ledger", {"until": "0.5"}), ("/v1/ledger", {"since": "1700000000"}),
                         ("/v1/stock/W/S", {"as_of": "0.5"})]:
        r = client.get(path, params=params)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["loc"] for e in r.json()["errors"]] == [["query", next(iter(params))]]
    assert client.get("/v1/ledger", params={"since": "2026-11-23T10:00:00.123+09:00"}).status_code == 200


def test_405_allow_names_every_method_of_the_path(client):
    # Starlette named only the methods of the first route matching the path (POST, not GET).
    for method, path, allowed in [("OPTIONS", "/v1/products", {"GET", "POST"}),
                                  ("DELETE", "/v1/warehouses/W", {"GET", "PATCH"}),
                                  ("PUT", "/v1/stock", {"GET"})]:
        r = client.request(method, path)
        assert r.status_code == 405, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert allowed <= {m.strip() for m in r.headers["allow"].split(",")} <= allowed | {"HEAD"}


def test_the_openapi_document_describes_every_error_as_a_problem(client):
    spec = client.get("/openapi.json").json()
    assert set(spec["components"]["schemas"]["Problem"]["required"]) == {"type", "title", "status",
                                                                         "detail"}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if not path.startswith("/v1/"):
                continue
            assert {"401", "403", "422", "429"} <= set(operation["responses"]), (method, path)
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (method, path)
    assert "text/plain" in spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
