"""`POST /v1/commands` for the requests that will be accepted, without FastAPI's per-request work.

A single command is the busiest request by far. For it FastAPI spent most of its time solving the
route's dependencies (key, body, header) and serialising the answer (what this gained:
docs/performance.md). This layer authorizes every request to the path first, with the same
decision as the routes (api/access.py), before it reads the body; a refusal is answered here. Then
a request it can tell is well formed (JSON with every key once, a valid command, no
Idempotency-Key) goes straight to submission (api/accept/submit.py, shared with the route: the
warehouse limit, the job writer, `Prefer: wait`).

Everything else goes on to the route with its body untouched and the decision made (the route does
not decide again): every other error answer, idempotent replay and the OpenAPI document stay the
route's own.
"""

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import strict_json
from api.accept.submit import Work, requested_wait, submit
from api.access import authorize
from api.problems import ProblemError, answer
from api.routes.commands import ROUTE_PATH, command_route
from shared.api_keys import Principal
from shared.schemas.commands import command_adapter

# The route's limit on the Prefer header: longer ones go to the route, which answers 422.
MAX_PREFER_LENGTH = 200


class FastCommands:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = command_route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != ROUTE_PATH:
            await self.app(scope, receive, send)
            return
        # For the request metrics, as routing would set it (routing sets it again on the way there).
        scope["route"] = self.route
        try:
            principal = await authorize(scope, "write", trust_kept_key=True)
        except ProblemError as refused:  # the body is never read
            await answer(Request(scope), refused.problem, refused.headers)(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        replay = _replaying(body, complete, receive)
        response = await self._serve(scope, body, principal) if complete else None
        await (self.app if response is None else response)(scope, replay, send)

    async def _serve(self, scope: Scope, body: bytes, principal: Principal) -> Response | None:
        """The 202 (or a refusal), or None to leave the request to the route."""
        headers = Headers(scope=scope)
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if (media_type != "application/json" or "idempotency-key" in headers
                or len(headers.get("prefer", "")) > MAX_PREFER_LENGTH):
            return None
        try:
            command = command_adapter.validate_python(strict_json.loads(body))
        except (ValueError, RecursionError, ValidationError, strict_json.DuplicateKey):
            return None  # the route says what is wrong
        work = Work("command", None, command.model_dump(exclude_none=True), (command,))
        try:
            return await submit(work, principal, wait_seconds=requested_wait(headers.get("prefer")))
        except ProblemError as refused:  # warehouse, key, rate, database, queue, waiting: answered here
            return answer(Request(scope), refused.problem, refused.headers)


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
