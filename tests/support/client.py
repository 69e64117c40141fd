"""Small HTTP helpers for the end-to-end tests."""

import time
import uuid
from typing import Any

import httpx

TERMINAL = {"succeeded", "failed", "partially_failed"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_catalog(client: httpx.Client, warehouses: list[str], skus: list[str]) -> None:
    for code in warehouses:
        r = client.post("/v1/warehouses", json={"code": code, "name": f"Warehouse {code}"})
        assert r.status_code == 201, r.text
    for sku in skus:
        r = client.post("/v1/products", json={"sku": sku, "name": f"Product {sku}"})
        assert r.status_code == 201, r.text


def submit(client: httpx.Client, command: dict[str, Any]) -> str:
    r = client.post("/v1/commands", json=command)
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/jobs/{r.json()['job_id']}"
    return r.json()["job_id"]


def wait_for_jobs(client: httpx.Client, job_ids: list[str], timeout: float = 60) -> dict[str, dict]:
    """Poll until every job is terminal; fail with the stragglers' states otherwise."""
    done: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job_id in [j for j in job_ids if j not in done]:
            body = client.get(f"/v1/jobs/{job_id}").json()
            if body["status"] in TERMINAL:
                done[job_id] = body
        if len(done) == len(job_ids):
            return done
        time.sleep(0.1)
    pending = {j: client.get(f"/v1/jobs/{j}").json()["status"] for j in job_ids if j not in done}
    raise AssertionError(f"{len(pending)} job(s) not terminal after {timeout}s: "
                         f"{list(pending.items())[:5]}")
