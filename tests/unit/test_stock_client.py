"""The client's retry rules and calls, against an httpx MockTransport: what it sends, how long it
waits before each retry (the sleeps are recorded, not slept), and when it gives up."""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from client.stock_client import RetryPolicy, StockClient, StockClientError, parse_retry_after

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
JOB = {"job_id": "j-1", "kind": "command", "status": "succeeded", "submitted_at": "2026-12-01T12:00:00Z",
       "result": {"on_hand_after": 5, "version_after": 1}}
RECEIVE = {"type": "receive", "warehouse": "SEL-1", "sku": "BOOK-001", "quantity": 5}


@pytest.mark.parametrize(("value", "seconds"), [
    ("120", 120.0), ("0", 0.0), (" 7 ", 7.0),
    ("Tue, 01 Dec 2026 12:00:30 GMT", 30.0),      # IMF-fixdate, the form to send
    ("Tuesday, 01-Dec-26 12:01:00 GMT", 60.0),    # RFC 850, obsolete but to be accepted
    ("Tue Dec  1 12:00:05 2026", 5.0),            # asctime, no zone: UTC
    ("Tue, 01 Dec 2026 11:59:00 GMT", 0.0),       # in the past: no wait
])
def test_retry_after_in_both_forms(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


@pytest.mark.parametrize("value", [None, "", "-1", "1.5", "+3", "soon", "\u0663",
                                   "Tue, 99 Dec 2026 12:00:00 GMT"])
def test_retry_after_that_is_not_valid_is_none(value):
    assert parse_retry_after(value, now=NOW) is None


def test_retry_after_date_counts_from_the_clock():
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 <= parse_retry_after(in_a_minute) <= 60


Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, sleeps: list[float], **policy: float) -> StockClient:
    retry = RetryPolicy(sleep=sleeps.append, **policy)  # type: ignore[arg-type]
    return StockClient("http://stock.test", "sk_test", retry=retry, transport=httpx.MockTransport(handler))


def answers(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler that gives the responses (or raises the errors) in turn, and the requests it saw."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = responses[min(len(seen), len(responses)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handle, seen


def problem(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return httpx.Response(status, headers=headers,
                          json={"type": f"/problems/{status}", "title": "x", "status": status, "detail": "d"})


def test_a_503_is_retried_after_its_retry_after_with_jitter_and_the_same_idempotency_key():
    handler, seen = answers(problem(503, "2"), problem(429, "3"), httpx.Response(200, json=JOB))
    sleeps: list[float] = []
    with make_client(handler, sleeps) as stock:
        assert stock.run(RECEIVE) == JOB
    assert 2 <= sleeps[0] <= 2.2 and 3 <= sleeps[1] <= 3.3
    assert len({request.headers["Idempotency-Key"] for request in seen}) == 1
    assert [json.loads(request.content) for request in seen] == [RECEIVE] * 3


def test_an_http_date_retry_after_is_honoured():
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=4), usegmt=True)
    handler, _ = answers(problem(429, later), httpx.Response(200, json=JOB))
    sleeps: list[float] = []
    with make_client(handler, sleeps) as stock:
        stock.get_job("j-1")
    assert 2.5 <= sleeps[0] <= 4 * 1.1


def test_network_errors_back_off_exponentially_with_full_jitter():
    handler, seen = answers(*[httpx.ConnectError("refused")] * 5, httpx.Response(200, json=JOB))
    sleeps: list[float] = []
    with make_client(handler, sleeps, base_backoff=0.5, max_backoff=3.0) as stock:
        assert stock.get_job("j-1") == JOB
    assert len(seen) == 6
    ceilings = [0.5, 1.0, 2.0, 3.0, 3.0]
    assert all(0 <= sleep <= ceiling for sleep, ceiling in zip(sleeps, ceilings, strict=True))


def test_retries_run_out_with_the_last_answer_or_error():
    handler, seen = answers(problem(503))
    with make_client(handler, [], max_attempts=4) as stock, pytest.raises(StockClientError) as refused:
        stock.submit_command(RECEIVE)
    assert refused.value.status == 503 and refused.value.problem["type"] == "/problems/503"
    assert len(seen) == 4

    handler, seen = answers(httpx.ReadError("lost"))
    with make_client(handler, [], max_attempts=3) as stock, pytest.raises(httpx.ReadError):
        stock.submit_command(RECEIVE)
    assert len(seen) == 3


def test_a_retry_after_longer_than_the_policy_allows_is_handed_to_the_caller():
    handler, seen = answers(problem(503, "3600"))
    sleeps: list[float] = []
    with make_client(handler, sleeps, max_retry_after=60) as stock, pytest.raises(StockClientError):
        stock.submit_command(RECEIVE)
    assert len(seen) == 1 and sleeps == []


def test_a_refusal_is_not_retried():
    handler, seen = answers(problem(422))
    with make_client(handler, []) as stock, pytest.raises(StockClientError) as refused:
        stock.submit_command(RECEIVE)
    assert refused.value.status == 422 and len(seen) == 1


def test_run_waits_on_the_post_then_long_polls_the_job():
    queued = {"job_id": "j-1", "kind": "command", "status": "queued", "submitted_at": "x"}
    handler, seen = answers(httpx.Response(202, json=queued), httpx.Response(200, json=JOB))
    with make_client(handler, []) as stock:
        assert stock.run(RECEIVE, timeout=12) == JOB
    post, poll = seen
    assert (post.method, post.url.path, post.headers["Prefer"]) == ("POST", "/v1/commands", "wait=12")
    assert (poll.method, poll.url.path) == ("GET", "/v1/jobs/j-1")
    assert poll.headers["Prefer"].startswith("wait=")


def test_reservation_commands_and_reads():
    handler, seen = answers(httpx.Response(200, json=JOB))
    with make_client(handler, []) as stock:
        stock.reserve("SEL-1", "BOOK-001", 2, "cart-81f3", expires_in=600)
        stock.commit("cart-81f3", 1)
        stock.release("cart-81f3", reference="abandoned")
        stock.get_reservation("cart-81f3")
        stock.get_stock("SEL-1", "BOOK-001", as_of="2026-12-01T10:00:00Z")
        stock.ledger(warehouse="SEL-1", type="reserve", limit=10)
    assert [json.loads(request.content) for request in seen[:3]] == [
        {"type": "reserve", "warehouse": "SEL-1", "sku": "BOOK-001", "quantity": 2,
         "reservation": "cart-81f3", "expires_in": 600},
        {"type": "commit", "reservation": "cart-81f3", "quantity": 1},
        {"type": "release", "reservation": "cart-81f3", "reference": "abandoned"},
    ]
    assert [str(request.url) for request in seen[3:]] == [
        "http://stock.test/v1/reservations/cart-81f3",
        "http://stock.test/v1/stock/SEL-1/BOOK-001?as_of=2026-12-01T10%3A00%3A00Z",
        "http://stock.test/v1/ledger?warehouse=SEL-1&type=reserve&limit=10",
    ]
    assert all(request.headers["Authorization"] == "Bearer sk_test" for request in seen)
