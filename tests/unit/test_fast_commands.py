"""Which requests the fast command path serves itself and which it hands to the route, with their
bodies intact. The authorization decision and the job writer are stand-ins here; the real ones,
checking keys against MySQL and rate limits in Redis, are tested in tests/e2e/test_fast_commands.py
and tests/e2e/test_partners.py."""

import asyncio
import json
from typing import Any

import pytest

import api.accept.fast_path as fast_path
import api.accept.submit as submission
from api.accept.fast_path import FastCommands
from api.accept.writer import Acceptance
from api.access import PRINCIPAL, unauthorized
from api.problems import ProblemError
from shared.api_keys import Principal
from shared.ordering import slot_for
from shared.problems import Problem

COMMAND = {"type": "receive", "warehouse": "W1", "sku": "S1", "quantity": 3}
KEYS = {"Bearer sk_abc_secret": Principal(1, "writer", frozenset({"write"}), "abc"),
        "Bearer sk_lim_secret": Principal(2, "limited", frozenset({"write"}), "lim", frozenset({"W1"}))}


class Writer:
    """Accepts every submission, as the writer would for a live key."""

    def __init__(self, refusal: ProblemError | None = None) -> None:
        self.submitted: list[dict[str, Any]] = []
        self.refusal = refusal

    async def submit(self, **fields: Any) -> Acceptance:
        if self.refusal is not None:
            raise self.refusal
        self.submitted.append(fields)
        return Acceptance(fields["job_id"], "command", "queued", "2026-11-24T10:00:00.000Z")


@pytest.fixture(autouse=True)
def decisions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The authorization decision: the keys above, each with its principal; anything else 401."""
    asked: list[str] = []

    async def authorize(scope: dict, needed: str, *, trust_kept_key: bool = False) -> Principal:
        header = dict(scope["headers"]).get(b"authorization", b"").decode()
        asked.append(header)
        if header not in KEYS:
            raise unauthorized("The API key is not valid or has been revoked.")
        scope[PRINCIPAL] = KEYS[header]
        return KEYS[header]

    monkeypatch.setattr(fast_path, "authorize", authorize)
    return asked


@pytest.fixture
def writer(monkeypatch: pytest.MonkeyPatch) -> Writer:
    writer = Writer()
    monkeypatch.setattr(submission, "get_job_writer", lambda: writer)
    return writer


def call(body: bytes, headers: dict[str, str], chunk: int | None = None,
         layer: FastCommands | None = None) -> tuple[list, list, list]:
    """Run one request through the layer; returns (what reached the route, its body, what was sent)."""
    parts = [body[i:i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
    incoming = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
                for i, p in enumerate(parts)]
    reached: list[dict] = []
    route_body: list[bytes] = []
    sent: list[dict] = []

    async def route(scope: dict, receive: Any, send: Any) -> None:
        reached.append(scope)
        while True:
            message = await receive()
            route_body.append(message.get("body", b""))
            if not message.get("more_body"):
                return

    async def receive() -> dict:
        return incoming.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/commands", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    if layer is not None:
        layer.app = route
    asyncio.run((layer or FastCommands(route))(scope, receive, send))
    call.unread = len(incoming)  # type: ignore[attr-defined]
    return reached, route_body, sent


WRITE = {"authorization": "Bearer sk_abc_secret", "content-type": "application/json"}


def test_a_valid_command_is_answered_without_the_route(writer: Writer):
    reached, _, sent = call(json.dumps(COMMAND).encode(), WRITE, chunk=5)
    assert reached == []
    assert sent[0]["status"] == 202
    job_id = writer.submitted[0]["job_id"]
    assert dict(sent[0]["headers"])[b"location"] == f"/v1/jobs/{job_id}".encode()
    assert json.loads(sent[1]["body"]) == {"job_id": job_id, "kind": "command", "status": "queued",
                                           "submitted_at": "2026-11-24T10:00:00.000Z"}
    assert writer.submitted == [{"job_id": job_id, "api_key_id": 1, "kind": "command", "mode": None,
                                 "payload": COMMAND, "slot": slot_for(COMMAND["warehouse"]),
                                 "line_count": 1, "idempotency_key": None, "request_hash": None}]


@pytest.mark.parametrize("headers, body", [
    ({**WRITE, "content-type": "text/plain"}, json.dumps(COMMAND).encode()),
    ({**WRITE, "idempotency-key": "k-1"}, json.dumps(COMMAND).encode()),  # replays are the route's
    (WRITE, json.dumps({**COMMAND, "quantity": 0}).encode()),
    (WRITE, json.dumps({**COMMAND, "type": "teleport"}).encode()),
    (WRITE, b'{"type": "receive", "warehouse": "W1", "sku": "S1", "quantity": 1, "quantity": 100}'),
    (WRITE, b"[" * 100_000 + b"]" * 100_000),
])
def test_anything_else_reaches_the_route_with_its_whole_body_and_the_decision(
        writer: Writer, decisions: list[str], headers: dict, body: bytes):
    reached, route_body, sent = call(body, headers, chunk=4096)
    assert len(reached) == 1 and sent == []
    assert b"".join(route_body) == body
    assert reached[0][PRINCIPAL] == KEYS["Bearer sk_abc_secret"]  # the route does not decide again
    assert writer.submitted == [] and len(decisions) == 1


@pytest.mark.parametrize("authorization", [None, "Basic abc", "Bearer not-a-key", "Bearer sk_abd_secret"])
def test_a_key_that_is_not_valid_is_answered_here_before_the_body_is_read(writer: Writer, authorization):
    headers = {"content-type": "application/json"}
    if authorization:
        headers["authorization"] = authorization
    reached, _, sent = call(json.dumps(COMMAND).encode(), headers, chunk=5)
    assert reached == [] and writer.submitted == []
    assert sent[0]["status"] == 401
    assert json.loads(sent[1]["body"])["type"] == "/problems/unauthorized"
    assert call.unread == len(json.dumps(COMMAND)) // 5 + 1  # type: ignore[attr-defined]


def test_a_refusal_is_answered_here_as_a_problem_not_tried_again_by_the_route(
        monkeypatch: pytest.MonkeyPatch):
    refusing = Writer(ProblemError(Problem("overloaded", 503, "Later."), {"Retry-After": "2"}))
    monkeypatch.setattr(submission, "get_job_writer", lambda: refusing)
    reached, _, sent = call(json.dumps(COMMAND).encode(), WRITE)
    assert reached == [] and refusing.submitted == []
    assert sent[0]["status"] == 503
    assert dict(sent[0]["headers"])[b"retry-after"] == b"2"
    assert json.loads(sent[1]["body"])["type"] == "/problems/overloaded"


def test_a_key_limited_to_warehouses_submits_no_command_naming_another(writer: Writer):
    limited = {**WRITE, "authorization": "Bearer sk_lim_secret"}
    reached, _, sent = call(json.dumps({**COMMAND, "warehouse": "W2"}).encode(), limited)
    assert reached == [] and writer.submitted == []
    assert sent[0]["status"] == 403
    assert json.loads(sent[1]["body"])["type"] == "/problems/forbidden-warehouse"
    transfer = {"type": "transfer", "from_warehouse": "W1", "to_warehouse": "W2", "sku": "S1", "quantity": 1}
    _, _, sent = call(json.dumps(transfer).encode(), limited)
    assert sent[0]["status"] == 403 and json.loads(sent[1]["body"])["warehouses"] == ["W2"]
    _, _, sent = call(json.dumps(COMMAND).encode(), limited)
    assert sent[0]["status"] == 202 and writer.submitted[0]["api_key_id"] == 2


def test_other_routes_pass_straight_through(writer: Writer):
    reached: list = []

    async def route(scope: dict, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    for method, path in (("GET", "/v1/commands"), ("POST", "/v1/batches"), ("GET", "/v1/jobs/x")):
        asyncio.run(FastCommands(route)({"type": "http", "method": method, "path": path, "headers": []},
                                        None, None))
    assert reached == ["/v1/commands", "/v1/batches", "/v1/jobs/x"]
