"""`POST /v1/commands` for the requests that will be accepted, without FastAPI's per-request work.

A single command is the busiest request by far. For it FastAPI spent most of its time solving the
route's dependencies (key, body, header) and serialising the answer. This layer takes a request it
can tell is well formed (JSON, a Bearer key, a valid command, no Idempotency-Key) straight to the job
writer with the key, and the writer checks the key, its write scope and its rate limit with the
rest of its group, and its INSERT refuses a key revoked meanwhile (`api/accept/writer.py`): one stage
and one thread hop less than the route's key lookup (what it gained: docs/performance.md). A
`Prefer: wait` is served here too (`api/accept/submit.py`).

Everything else goes on to the route with its body untouched, and so does a request whose key the
writer refuses: every error answer, idempotent replay and the OpenAPI document stay the route's own.
"""

import time

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.accept.submit import Caller, Work, requested_wait, submit
from api.accept.writer import KeyRefused
from api.problems import ProblemError, answer
from api.routes.commands import ROUTE_PATH, command_route
from shared.api_keys import parse_token
from shared.schemas.commands import command_adapter

# Prefixes the writer refused lately go straight to the route, so made-up keys cost the writer's
# thread one check per prefix and minute, not one per request. (Someone who knows a real key's
# prefix can only send that key's commands the route's slower way for a minute.)
REFUSED_PREFIX_SECONDS = 60.0
MAX_REFUSED_PREFIXES = 10_000
# The route's limit on the Prefer header: longer ones go to the route, which answers 422.
MAX_PREFER_LENGTH = 200


class FastCommands:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = command_route()
        self.refused: dict[str, float] = {}  # prefix -> until when

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != ROUTE_PATH:
            await self.app(scope, receive, send)
            return
        # For the request metrics, as routing would set it (routing sets it again on the way there).
        scope["route"] = self.route
        body, complete = await _read_body(receive)
        replay = _replaying(body, complete, receive)
        response = await self._serve(scope, body) if complete else None
        await (self.app if response is None else response)(scope, replay, send)

    async def _serve(self, scope: Scope, body: bytes) -> Response | None:
        """The 202 (or the writer's refusal), or None to leave the request to the route."""
        headers = Headers(scope=scope)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        parsed = parse_token(token) if scheme.lower() == "bearer" else None
        if (parsed is None or media_type != "application/json" or "idempotency-key" in headers
                or len(headers.get("prefer", "")) > MAX_PREFER_LENGTH):
            return None
        if self.refused.get(parsed[0], 0.0) > time.monotonic():
            return None
        try:
            command = command_adapter.validate_json(body)
        except ValidationError:
            return None
        work = Work("command", None, command.model_dump(exclude_none=True), command.first_warehouse)
        try:
            return await submit(work, Caller(prefix=parsed[0], key=parsed),
                                wait_seconds=requested_wait(headers.get("prefer")))
        except KeyRefused:
            self._remember_refused(parsed[0])
            return None  # the route authenticates the usual way and says why
        except ProblemError as refused:  # rate limit, database, queue, waiting: answered here, once
            return answer(Request(scope), refused.problem, refused.headers)

    def _remember_refused(self, prefix: str) -> None:
        now = time.monotonic()
        if len(self.refused) >= MAX_REFUSED_PREFIXES:
            self.refused = {p: until for p, until in self.refused.items() if until > now}
            if len(self.refused) >= MAX_REFUSED_PREFIXES:
                return  # a flood of made-up prefixes: they take the route's lookup like any other
        self.refused[prefix] = now + REFUSED_PREFIX_SECONDS


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, and whether it came whole (not cut short by a disconnect). The body-size
    limit outside this layer counts it as it comes."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body), False
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return bytes(body), True


def _replaying(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A receive that gives the body read already as one message, then whatever comes next (a
    disconnect, if the body was cut short)."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": not complete}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
