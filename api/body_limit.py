"""Refuse bodies over their route's size limit before they are read into memory (413).

The limit depends on the path alone: batches take the large one, every other route the small one.
Nothing here reads a body; it counts what the route (or the fast path) reads, after the key was
checked (api/access.py), and refuses at once a body whose Content-Length says it is too large.
"""

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import count_rejection
from shared.problems import Problem


class BodySizeLimit:
    """Pure ASGI middleware: checks Content-Length, and counts bytes when it is absent or lies.
    `large` names the paths that take `large_bytes`; every other path takes `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int, large: frozenset[str] = frozenset(),
                 large_bytes: int = 0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.large = large
        self.large_bytes = large_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.large_bytes if scope["path"] in self.large else self.max_bytes
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, send, limit)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(scope, send, limit)

    async def _reject(self, scope: Scope, send: Send, limit: int) -> None:
        count_rejection(scope["method"], scope["path"], "payload-too-large")
        body = json.dumps(Problem("payload-too-large", 413, f"The body is over {limit} bytes.",
                                  {"max_body_bytes": limit}).to_dict()).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """An HTTPException because FastAPI's body reader passes those on but turns any other error
    into a 400; the app's handler then answers 413 (a chunked body has no Content-Length)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The body is over {max_bytes} bytes.")
