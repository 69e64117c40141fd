"""Refuse bodies over the size limit before they are read into memory (413)."""

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import count_rejection
from shared.problems import Problem


class BodySizeLimit:
    """Pure ASGI middleware: checks Content-Length, and counts bytes when it is absent or lies."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge(self.max_bytes)
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
                await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        count_rejection(scope["method"], scope["path"], "payload-too-large")
        body = json.dumps(Problem("payload-too-large", 413,
                                  f"The body is over {self.max_bytes} bytes.").to_dict()).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(HTTPException):
    """An HTTPException because FastAPI's body reader passes those on but turns any other error
    into a 400; the app's handler then answers 413 (a chunked body has no Content-Length)."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"The body is over {max_bytes} bytes.")
