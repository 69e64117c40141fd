"""`POST /v1/commands` for the requests that will be accepted, without FastAPI's per-request work.

A single command is the busiest request by far. For it FastAPI spent most of its time solving the
route's dependencies (key, body, header) and serialising the answer. This layer takes a request it
can tell is well formed (JSON, a Bearer key, a valid command, no Idempotency-Key) straight to the job
writer with the key, and the writer checks the key, its write scope and its rate limit with the
rest of its group, in the transaction that writes the job (`api/job_writer.py`): one stage and one
thread hop less than the route's key lookup. On one API process this lifted S1 of bench/load.py
from about 1,420 to about 2,150 accepted commands/s.

Everything else goes on to the route with its body untouched, and so does a request whose key the
writer refuses: every error answer, idempotent replay and the OpenAPI document stay the route's own.
"""

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.job_writer import KeyRefused
from api.problems import ProblemError, answer
from api.routes.commands import ROUTE_PATH, accept, command_route
from shared.api_keys import parse_token
from shared.schemas.commands import command_adapter


class FastCommands:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = command_route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != ROUTE_PATH:
            await self.app(scope, receive, send)
            return
        messages = await _read_request(receive)
        replay = _replaying(messages, receive)
        response = await self._serve(scope, messages)
        if response is None:
            await self.app(scope, replay, send)
            return
        scope["route"] = self.route  # for the request metrics, as routing would have set it
        await response(scope, replay, send)

    async def _serve(self, scope: Scope, messages: list[Message]) -> Response | None:
        """The 202 (or the writer's refusal), or None to leave the request to the route."""
        if messages[-1]["type"] != "http.request":
            return None  # the client went away mid-body
        headers = Headers(scope=scope)
        scheme, _, token = headers.get("authorization", "").partition(" ")
        media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        parsed = parse_token(token) if scheme.lower() == "bearer" else None
        if parsed is None or media_type != "application/json" or "idempotency-key" in headers:
            return None
        try:
            command = command_adapter.validate_json(b"".join(m.get("body", b"") for m in messages))
        except ValidationError:
            return None
        try:
            accepted, answer_headers = await accept(None, kind="command", mode=None,
                                                    payload=command.model_dump(exclude_none=True),
                                                    first_warehouse=command.first_warehouse, key=parsed)
        except KeyRefused:
            return None  # the route authenticates the usual way and says why
        except ProblemError as refused:  # rate limit, database or queue: answered here, once
            return answer(Request(scope), refused.problem, refused.headers)
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202, headers=answer_headers)


async def _read_request(receive: Receive) -> list[Message]:
    """The request's messages up to the end of its body (or a disconnect). The body-size limit
    outside this layer counts them as they come."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives the messages read already, then whatever comes next."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
