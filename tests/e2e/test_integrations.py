"""Integrations that retry and burst: idempotency keys, backpressure, rate limits, long polling."""

import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import httpx
import pytest
from sqlalchemy import func, select

from client.stock_client import StockClient
from shared.models import Job, LedgerEntry
from tests.e2e.conftest import assert_books_balance, make_key
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import start_api, start_worker


def _send_and_drop(api_url: str, key: str, body: bytes, idempotency_key: str) -> None:
    """Send a whole request, then close the socket without reading the answer: a lost response.
    The socket stays open a moment first, as a client's does while it waits: a request whose
    client is gone before the API has checked its key is not served at all (uvicorn reports the
    disconnect instead of the body), which is no lost response."""
    url = urlparse(api_url)
    request = (f"POST /v1/commands HTTP/1.1\r\nHost: {url.netloc}\r\n"
               f"Authorization: Bearer {key}\r\nIdempotency-Key: {idempotency_key}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection((url.hostname, url.port)) as s:
        s.sendall(request)
        time.sleep(0.3)


def _job_count(db, key_id_job: str) -> int:
    db.rollback()
    owner, idem = db.execute(select(Job.api_key_id, Job.idempotency_key).where(Job.id == key_id_job)).one()
    return db.scalar(select(func.count()).select_from(Job)
                     .where(Job.api_key_id == owner, Job.idempotency_key == idem))


def test_dropped_connections_and_retries_create_one_job_and_one_effect(client, api_url, auth, db):
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    key = auth["Authorization"].split()[1]
    body = f'{{"type": "receive", "warehouse": "{warehouse}", "sku": "{sku}", "quantity": 4}}'.encode()
    idempotency_key = str(uuid.uuid4())
    for _ in range(5):
        _send_and_drop(api_url, key, body, idempotency_key)
    time.sleep(1)  # let the server finish the requests whose answers nobody reads

    r = client.post("/v1/commands", content=body, headers={"Idempotency-Key": idempotency_key,
                                                           "Content-Type": "application/json"})
    assert r.status_code == 202
    assert r.headers["idempotent-replayed"] == "true"
    job_id = r.json()["job_id"]
    assert wait_for_jobs(client, [job_id])[job_id]["status"] == "succeeded"

    assert _job_count(db, job_id) == 1
    assert db.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.job_id == job_id)) == 1
    assert client.get(f"/v1/stock/{warehouse}/{sku}").json()["on_hand"] == 4
    assert_books_balance(db)


def test_same_key_with_another_body_is_422_and_racing_duplicates_make_one_job(client, api_url, auth):
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    command = {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1}
    key = str(uuid.uuid4())

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=api_url, headers=auth, timeout=30) as own:
            return own.post("/v1/commands", json=command, headers={"Idempotency-Key": key})

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(post, range(10)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["job_id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9

    other = client.post("/v1/commands", json={**command, "quantity": 2}, headers={"Idempotency-Key": key})
    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-mismatch"
    assert other.json()["job_id"] == responses[0].json()["job_id"]

    # The key belongs to one API key: another key may use the same string for its own job.
    with httpx.Client(base_url=api_url, timeout=30,
                      headers={"Authorization": f"Bearer {make_key({'read', 'write'})}"}) as stranger:
        theirs = stranger.post("/v1/commands", json=command, headers={"Idempotency-Key": key})
    assert theirs.status_code == 202 and theirs.json()["job_id"] != responses[0].json()["job_id"]


@pytest.fixture
def isolated_queue():
    """An API of its own whose shard queues no running worker consumes."""
    env = {"QUEUE_PREFIX": f"bp{uuid.uuid4().hex[:8]}", "MAX_QUEUED_JOBS": "100",
           "RATE_LIMIT_PER_SECOND": "0"}
    api, url = start_api(env, workers=1)
    yield env, url
    api.stop()


def test_over_the_high_water_mark_work_gets_503_while_reads_answer(isolated_queue, auth, db):
    env, url = isolated_queue
    with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
        warehouse, sku = unique("W"), unique("SKU")
        create_catalog(c, [warehouse], [sku])
        command = {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1}
        accepted = [submit(c, command) for _ in range(100)]

        refused = c.post("/v1/commands", json=command)
        assert refused.status_code == 503
        assert refused.json()["type"] == "/problems/overloaded"
        assert int(refused.headers["retry-after"]) >= 1
        assert c.post("/v1/batches", json={"mode": "atomic", "commands": [command]}).status_code == 503
        assert c.get(f"/v1/stock/{warehouse}/{sku}").status_code == 200
        assert c.get(f"/v1/jobs/{accepted[0]}").json()["status"] == "queued"

        queues = [f"{env['QUEUE_PREFIX']}.{shard}" for shard in range(2)]
        worker = start_worker("drain", queues=queues, env=env)
        try:
            results = wait_for_jobs(c, accepted, timeout=120)
        finally:
            worker.stop()
        assert {r["status"] for r in results.values()} == {"succeeded"}
        assert c.get(f"/v1/stock/{warehouse}/{sku}").json()["on_hand"] == 100
    assert_books_balance(db)


def test_a_key_over_its_rate_gets_429_with_retry_after(workers):
    api, url = start_api({"RATE_LIMIT_PER_SECOND": "2", "RATE_LIMIT_BURST": "3"}, workers=1)
    try:
        key = make_key({"read"})
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            statuses = [c.get("/v1/stock").status_code for _ in range(8)]
            assert statuses[:3] == [200, 200, 200]
            limited = c.get("/v1/stock")
            assert limited.status_code == 429
            assert limited.json()["type"] == "/problems/rate-limited"
            assert int(limited.headers["retry-after"]) >= 1
            time.sleep(1.1)
            assert c.get("/v1/stock").status_code == 200  # tokens come back at the configured rate
        other = make_key({"read"})  # a different key has its own bucket
        assert httpx.get(f"{url}/v1/stock", headers={"Authorization": f"Bearer {other}"}).status_code == 200
    finally:
        api.stop()


def test_prefer_wait_returns_when_the_job_completes(client, api_url, auth):
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    job_id = submit(client, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 2})
    started = time.monotonic()
    r = client.get(f"/v1/jobs/{job_id}", headers={"Prefer": "wait=5"})
    assert r.json()["status"] == "succeeded"
    assert time.monotonic() - started < 2.5


def test_prefer_wait_returns_the_queued_status_after_the_wait(isolated_queue, auth):
    _, url = isolated_queue
    with httpx.Client(base_url=url, headers=auth, timeout=30) as c:
        warehouse, sku = unique("W"), unique("SKU")
        create_catalog(c, [warehouse], [sku])
        job_id = submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 2})
        started = time.monotonic()
        r = c.get(f"/v1/jobs/{job_id}", headers={"Prefer": "wait=5"})
        elapsed = time.monotonic() - started
    assert r.json()["status"] == "queued"
    assert r.headers["preference-applied"] == "wait=5"
    assert 4.9 <= elapsed < 8


def test_the_client_retries_with_one_key_and_waits_for_the_result(client, api_url, auth, db):
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    failures = {"left": 3}
    real = httpx.HTTPTransport()

    class Flaky(httpx.BaseTransport):
        """Sends each POST on, then loses the first three responses."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = real.handle_request(request)
            if request.method == "POST" and failures["left"] > 0:
                failures["left"] -= 1
                response.read()
                raise httpx.ReadError("connection lost", request=request)
            return response

    key = auth["Authorization"].split()[1]
    with StockClient(api_url, key, transport=Flaky(), max_backoff=0.05) as stock:
        job = stock.run({"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 6})
        issue = {"type": "issue", "warehouse": warehouse, "sku": sku, "quantity": 1}
        batch_job = stock.run_batch([issue] * 2)
        queued = stock.submit_batch([issue])
        assert queued["status"] == "queued", "without a wait, the 202 answer"
        stock.wait(queued["job_id"])
    assert job["status"] == "succeeded" and job["result"] == {"on_hand_after": 6, "version_after": 1}
    assert batch_job["result"] == {"total": 2, "succeeded": 2, "failed": 0}
    assert client.get(f"/v1/stock/{warehouse}/{sku}").json()["on_hand"] == 3
    assert_books_balance(db)


def test_the_client_reserves_commits_releases_and_reads(client, api_url, auth, db):
    warehouse, sku = unique("W"), unique("SKU")
    create_catalog(client, [warehouse], [sku])
    cart, other = unique("cart"), unique("cart")
    key = auth["Authorization"].split()[1]
    with StockClient(api_url, key) as stock:
        assert stock.run({"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 5})[
            "status"] == "succeeded"
        held = stock.reserve(warehouse, sku, 3, cart, expires_in=600, reference="checkout")
        assert held["status"] == "succeeded" and held["result"]["available_after"] == 2
        assert stock.reserve(warehouse, sku, 1, other)["status"] == "succeeded"
        assert stock.commit(cart, 2)["result"]["reservation"]["held"] == 1
        assert stock.release(other)["status"] == "succeeded"
        too_many = stock.reserve(warehouse, sku, 9, unique("cart"))
        assert too_many["status"] == "failed"
        assert too_many["error"]["type"].endswith("/problems/insufficient-stock")

        assert stock.get_reservation(cart)["committed"] == 2
        assert stock.get_reservation(other)["status"] == "released"
        level = stock.get_stock(warehouse, sku)
        assert (level["on_hand"], level["reserved"], level["available"]) == (3, 1, 2)
        assert [item["sku"] for item in stock.list_stock(warehouse=warehouse)["items"]] == [sku]
        page = stock.ledger(warehouse=warehouse, sku=sku, limit=3)
        assert [entry["type"] for entry in page["items"]] == ["receive", "reserve", "reserve"]
        rest = stock.ledger(warehouse=warehouse, sku=sku, cursor=page["next_cursor"])
        assert [entry["type"] for entry in rest["items"]] == ["commit", "release"]
    assert_books_balance(db)
