"""Which requests the fast command path serves itself and which it hands to the route, with their
bodies intact. The job writer is a stand-in here; the real one, checking keys against MySQL and
rate limits in Redis, is tested in tests/e2e/test_fast_commands.py."""

import asyncio
import json
from typing import Any

import pytest

import api.accept.submit as submission
from api.accept.fast_path import FastCommands
from api.accept.writer import Acceptance, KeyRefused
from api.problems import ProblemError
from shared.ordering import slot_for
from shared.problems import Problem

COMMAND = {"type": "receive", "warehouse": "W1", "sku": "S1", "quantity": 3}


class Writer:
    """Accepts what comes with the key sk_abc_secret, as the writer would a valid write key."""

    def __init__(self, refusal: ProblemError | None = None) -> None:
        self.submitted: list[dict[str, Any]] = []
        self.refusal = refusal
        self.asked = 0

    async def submit(self, **fields: Any) -> Acceptance:
        self.asked += 1
        if fields["key"] != ("abc", "secret"):
            raise KeyRefused()
        if self.refusal is not None:
            raise self.refusal
        self.submitted.append(fields)
        return Acceptance(fields["job_id"], "command", "queued", "2026-11-24T10:00:00.000Z")


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
    assert writer.submitted == [{"job_id": job_id, "api_key_id": None, "key": ("abc", "secret"),
                                 "kind": "command", "mode": None, "payload": COMMAND,
                                 "slot": slot_for(COMMAND["warehouse"]), "line_count": 1,
                                 "idempotency_key": None, "request_hash": None}]


@pytest.mark.parametrize("headers, body", [
    ({"content-type": "application/json"}, COMMAND),  # no key
    ({**WRITE, "authorization": "Basic abc"}, COMMAND),
    ({**WRITE, "authorization": "Bearer not-a-key"}, COMMAND),
    ({**WRITE, "content-type": "text/plain"}, COMMAND),
    ({**WRITE, "idempotency-key": "k-1"}, COMMAND),  # replays and their checks are the route's
    (WRITE, {**COMMAND, "quantity": 0}),
    (WRITE, {**COMMAND, "type": "teleport"}),
])
def test_anything_else_reaches_the_route_with_its_whole_body(writer: Writer, headers: dict, body: dict):
    raw = json.dumps(body).encode()
    reached, route_body, sent = call(raw, headers, chunk=4)
    assert len(reached) == 1 and sent == []
    assert b"".join(route_body) == raw
    assert writer.submitted == []


def test_a_key_the_writer_refuses_is_left_to_the_route(writer: Writer):
    raw = json.dumps(COMMAND).encode()
    reached, route_body, sent = call(raw, {**WRITE, "authorization": "Bearer sk_abd_secret"})
    assert len(reached) == 1 and b"".join(route_body) == raw and sent == []
    assert writer.submitted == []


def test_a_prefix_the_writer_refused_goes_straight_to_the_route_for_a_while(writer: Writer):
    layer = FastCommands(None)  # type: ignore[arg-type]
    made_up = {**WRITE, "authorization": "Bearer sk_zzz_guess"}
    for _ in range(3):
        reached, _, _ = call(json.dumps(COMMAND).encode(), made_up, layer=layer)
        assert len(reached) == 1
    assert writer.asked == 1
    reached, _, sent = call(json.dumps(COMMAND).encode(), WRITE, layer=layer)  # another prefix
    assert reached == [] and sent[0]["status"] == 202


def test_a_refusal_is_answered_here_as_a_problem_not_tried_again_by_the_route(
        monkeypatch: pytest.MonkeyPatch):
    refusing = Writer(ProblemError(Problem("rate-limited", 429, "Slow down."), {"Retry-After": "2"}))
    monkeypatch.setattr(submission, "get_job_writer", lambda: refusing)
    reached, _, sent = call(json.dumps(COMMAND).encode(), WRITE)
    assert reached == [] and refusing.submitted == []
    assert sent[0]["status"] == 429
    assert dict(sent[0]["headers"])[b"retry-after"] == b"2"
    assert json.loads(sent[1]["body"])["type"] == "/problems/rate-limited"


def test_other_routes_pass_straight_through(writer: Writer):
    reached: list = []

    async def route(scope: dict, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    for method, path in (("GET", "/v1/commands"), ("POST", "/v1/batches"), ("GET", "/v1/jobs/x")):
        asyncio.run(FastCommands(route)({"type": "http", "method": method, "path": path, "headers": []},
                                        None, None))
    assert reached == ["/v1/commands", "/v1/batches", "/v1/jobs/x"]
