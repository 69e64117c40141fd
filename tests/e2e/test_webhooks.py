"""Webhooks with a real receiver: signed deliveries the `standardwebhooks` library verifies; a
receiver that is down, answers 500 or hangs gets everything once it answers (at least once,
deduplicated on `webhook-id`); 410 disables the subscription; receivers on private addresses are
refused unless allowed; at most WEBHOOK_MAX_IN_FLIGHT attempts per subscription at once; the
delivery log and its retry; and a receiver that hangs does not slow the stock commands.

The stack's retries are fast here (a fraction of a second, not seconds): the schedule's shape is
the same."""

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from standardwebhooks import Webhook

from tests.e2e.conftest import OwnDatabase
from tests.support.client import create_catalog, submit, unique, wait_for_jobs
from tests.support.processes import Process, start_api, start_worker
from tests.support.receiver import Receiver

FAST = {"WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true", "WEBHOOK_RETRY_BASE_SECONDS": "0.2",
        "WEBHOOK_RETRY_MAX_SECONDS": "1", "WEBHOOK_TIMEOUT_SECONDS": "1",
        "WEBHOOK_DISPATCH_INTERVAL_SECONDS": "0.05", "WEBHOOK_MAX_IN_FLIGHT": "3"}


class Stack:
    def __init__(self, url: str, database: OwnDatabase, workers: list[Process]) -> None:
        self.url, self.database, self.workers = url, database, workers
        self.admin = database.auth(frozenset({"admin"}))


@pytest.fixture
def stack(own_database: OwnDatabase, request) -> Iterator[Stack]:
    prefix = f"hooks{uuid.uuid4().hex[:8]}"
    env = {"QUEUE_PREFIX": prefix, "SHARD_COUNT": "1", "DATABASE_URL": own_database.address, **FAST,
           **getattr(request, "param", {})}
    api, url = start_api(env, workers=1)
    workers = [start_worker(f"{prefix}-w", [f"{prefix}.0"], env=env),
               start_worker(f"{prefix}-hooks", [f"{prefix}.webhooks"], env=env, pool="threads",
                            concurrency=8)]
    yield Stack(url, own_database, workers)
    for worker in workers:
        worker.stop()
    api.stop()


def _subscribe(c: httpx.Client, url: str, events: list[str], **more: object) -> dict:
    r = c.post("/v1/webhooks", json={"url": url, "events": events, **more})
    assert r.status_code == 201, r.text
    return r.json()


def _until(condition, timeout: float = 30, what: str = "the condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not within {timeout}s"
        time.sleep(0.05)


def _receive(c: httpx.Client, warehouse: str, sku: str, n: int) -> list[str]:
    jobs = [submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1})
            for _ in range(n)]
    wait_for_jobs(c, jobs)
    return jobs


def test_deliveries_are_signed_as_standard_webhooks_says(stack):
    receiver = Receiver().start()
    try:
        with httpx.Client(base_url=stack.url, headers=stack.admin, timeout=30) as c:
            warehouse, sku = unique("WH"), unique("WHS")
            create_catalog(c, [warehouse], [sku])
            subscription = _subscribe(c, receiver.url, ["stock.changed", "job.completed"])
            assert subscription["secret"].startswith("whsec_")
            assert "secret" not in c.get(f"/v1/webhooks/{subscription['id']}").json() or \
                c.get(f"/v1/webhooks/{subscription['id']}").json()["secret"] is None
            jobs = _receive(c, warehouse, sku, 3)
            _until(lambda: len(receiver.received) >= 6, what="six deliveries")
    finally:
        receiver.stop()
    verifier = Webhook(subscription["secret"])
    events = [verifier.verify(r.body, r.headers) for r in receiver.received]
    assert {e["data"]["job_id"] for e in events} == set(jobs)
    assert {r.headers["webhook-id"] for r in receiver.received} == {e["id"] for e in events}
    tampered = receiver.received[0]
    with pytest.raises(Exception):  # noqa: B017  (standardwebhooks raises its verification error)
        verifier.verify(tampered.body.replace('"quantity"', '"quantitY"') + " ", tampered.headers)


def test_a_receiver_down_for_a_while_then_answering_500_gets_every_event_once_it_answers(stack):
    receiver = Receiver(status=500).start()
    port = receiver.port
    with httpx.Client(base_url=stack.url, headers=stack.admin, timeout=30) as c:
        warehouse, sku = unique("WD"), unique("WDS")
        create_catalog(c, [warehouse], [sku])
        subscription = _subscribe(c, receiver.url, ["stock.changed"])
        receiver.stop()  # down: connections refused
        jobs = _receive(c, warehouse, sku, 10)
        time.sleep(1.5)
        receiver = Receiver(status=500, port=port).start()  # up, answering 500
        _until(lambda: len(receiver.received) >= 3, what="attempts answered 500")
        receiver.status = 200
        _until(lambda: len({r.headers["webhook-id"] for r in receiver.received if r.at}) >= 10,
               what="every event")
        _until(lambda: c.get(f"/v1/webhooks/{subscription['id']}/deliveries",
                             params={"status": "succeeded"}).json()["items"].__len__() == 10,
               what="every delivery succeeded")
        log = c.get(f"/v1/webhooks/{subscription['id']}/deliveries").json()["items"]
    receiver.stop()
    delivered = {json.loads(r.body)["data"]["job_id"] for r in receiver.received}
    assert delivered == set(jobs), "at least once: every event reached the receiver"
    assert max(d["attempts"] for d in log) >= 2
    assert {d["status"] for d in log} == {"succeeded"}


def test_a_receiver_that_hangs_is_retried_and_holds_up_no_stock_command(stack):
    receiver = Receiver(delay=5).start()  # longer than WEBHOOK_TIMEOUT_SECONDS
    try:
        with httpx.Client(base_url=stack.url, headers=stack.admin, timeout=30) as c:
            warehouse, sku = unique("WH"), unique("WHS")
            create_catalog(c, [warehouse], [sku])
            # One event per command: 50 deliveries that each time out after 1 s, 3 at a time, come
            # round to their retries after about 17 s; on a busy machine, later.
            _subscribe(c, receiver.url, ["job.completed"])
            started = time.monotonic()
            jobs = [submit(c, {"type": "receive", "warehouse": warehouse, "sku": sku, "quantity": 1})
                    for _ in range(50)]
            results = wait_for_jobs(c, jobs)
            took = time.monotonic() - started
            _until(lambda: len({r.headers["webhook-id"] for r in receiver.received})
                   < len(receiver.received), timeout=90, what="timed-out attempts tried again")
    finally:
        receiver.stop()
    assert {r["status"] for r in results.values()} == {"succeeded"}
    assert took < 5, f"50 commands took {took:.1f}s while the receiver hung"


def test_a_subscription_has_at_most_its_bound_of_attempts_in_flight(stack):
    receiver = Receiver(delay=0.5).start()  # slow, but within WEBHOOK_TIMEOUT_SECONDS
    try:
        with httpx.Client(base_url=stack.url, headers=stack.admin, timeout=30) as c:
            warehouse, sku = unique("WF"), unique("WFS")
            create_catalog(c, [warehouse], [sku])
            _subscribe(c, receiver.url, ["stock.changed"])
            _receive(c, warehouse, sku, 20)
            _until(lambda: len(receiver.received) >= 20, what="every delivery")
    finally:
        receiver.stop()
    assert receiver.most_in_flight == 3, "WEBHOOK_MAX_IN_FLIGHT at once, no more (and no fewer)"
    assert len(receiver.received) == 20, "each sent once"


def test_410_disables_the_subscription(stack):
    receiver = Receiver(status=410).start()
    try:
        with httpx.Client(base_url=stack.url, headers=stack.admin, timeout=30) as c:
            warehouse, sku = unique("WG"), unique("WGS")
            create_catalog(c, [warehouse], [sku])
            subscription = _subscribe(c, receiver.url, ["stock.changed"])
            _receive(c, warehouse, sku, 3)
            _until(lambda: c.get(f"/v1/webhooks/{subscription['id']}").json()["status"] == "disabled",
                   what="the subscription disabled")
            time.sleep(0.5)
            attempts = len(receiver.received)
            _receive(c, warehouse, sku, 2)
            time.sleep(1)
            shown = c.get(f"/v1/webhooks/{subscription['id']}").json()
    finally:
        receiver.stop()
    assert shown["disabled_reason"] == "the receiver answered 410 Gone"
    assert len(receiver.received) == attempts, "nothing more is sent to a receiver that said 410"


def test_a_failed_delivery_can_be_retried_by_hand(stack):
    receiver = Receiver(status=500).start()
    try:
        with httpx.Client(base_url=stack.url, headers=stack.admin, timeout=30) as c:
            warehouse, sku = unique("WR"), unique("WRS")
            create_catalog(c, [warehouse], [sku])
            subscription = _subscribe(c, receiver.url, ["stock.changed"])
            _receive(c, warehouse, sku, 1)
            _until(lambda: len(receiver.received) >= 2, what="retries")
            [delivery] = c.get(f"/v1/webhooks/{subscription['id']}/deliveries").json()["items"]
            receiver.status = 200
            retried = c.post(f"/v1/webhooks/{subscription['id']}/deliveries/{delivery['id']}/retry")
            assert retried.status_code == 200, retried.text
            _until(lambda: c.get(f"/v1/webhooks/{subscription['id']}/deliveries").json()["items"][0]["status"]
                   == "succeeded", what="the retried delivery succeeded")
            missing = c.post(f"/v1/webhooks/{subscription['id']}/deliveries/999999999/retry")
    finally:
        receiver.stop()
    assert missing.status_code == 404


@pytest.mark.parametrize("stack", [{"WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "false"}], indirect=True)
def test_receivers_on_private_loopback_or_link_local_addresses_are_refused(stack):
    with httpx.Client(base_url=stack.url, headers=stack.admin, timeout=30) as c:
        for url in ("http://127.0.0.1:9/hook", "http://localhost/hook", "http://169.254.169.254/latest",
                    "http://10.0.0.1/x", "http://[::1]/x", "ftp://example.com/x", "http://user:pw@example.com/"):
            r = c.post("/v1/webhooks", json={"url": url, "events": ["stock.changed"]})
            assert r.status_code == 422, (url, r.text)
            assert r.json()["type"] in ("/problems/receiver-refused", "/problems/validation-error"), url


def test_subscriptions_are_their_keys_own(stack):
    receiver = Receiver().start()
    try:
        other = stack.database.auth(frozenset({"read", "webhooks"}))
        without_scope = stack.database.auth(frozenset({"read", "write"}))
        with httpx.Client(base_url=stack.url, headers=stack.admin, timeout=30) as admin, \
                httpx.Client(base_url=stack.url, headers=other, timeout=30) as c, \
                httpx.Client(base_url=stack.url, headers=without_scope, timeout=30) as plain:
            mine = _subscribe(c, receiver.url, ["stock.changed"])
            theirs = _subscribe(admin, receiver.url, ["stock.changed"])
            assert [s["id"] for s in c.get("/v1/webhooks").json()["items"]] == [mine["id"]]
            assert c.get(f"/v1/webhooks/{theirs['id']}").status_code == 404
            assert c.delete(f"/v1/webhooks/{theirs['id']}").status_code == 404
            assert plain.get("/v1/webhooks").status_code == 403
            assert c.delete(f"/v1/webhooks/{mine['id']}").status_code == 204
            assert c.get(f"/v1/webhooks/{mine['id']}").status_code == 404
    finally:
        receiver.stop()
