"""Per request: a request id (from `X-Request-ID` or made here, echoed in the answer and carried to
the worker with the job), the request metrics, and a JSON access line.

Pure ASGI and outermost but one, so it sees every answer, also those of the body-size limit, and
adds only a clock read and two metric increments to a request. The access line is DEBUG (off by
default, like uvicorn's access log in bin/run) unless the request was slow.
"""

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.metrics import REQUEST_SECONDS, REQUESTS
from shared import logs

access_log = logging.getLogger("api.access")

# A caller's id is kept if it is short and plain (it goes into headers and logs); else a new one.
CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestTelemetry:
    def __init__(self, app: ASGIApp, slow_request_seconds: float) -> None:
        self.app = app
        self.slow_request_seconds = slow_request_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        caller_id = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = caller_id if CALLER_REQUEST_ID.fullmatch(caller_id) else uuid.uuid4().hex
        started = time.perf_counter()
        status = 500  # unless an answer starts: an exception escaping the app becomes a 500
        location = None

        async def observed_send(message: Message) -> None:
            nonlocal status, location
            if message["type"] == "http.response.start":
                status = message["status"]
                location = dict(message.get("headers", ())).get(b"location")
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            with logs.log_context(request_id=request_id):
                await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            # The route template, not the path: one series per route, whatever ids are in paths.
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(seconds)
            long_poll = b"wait" in headers.get(b"prefer", b"")  # waits on purpose
            slow = seconds >= self.slow_request_seconds and not long_poll
            if slow or access_log.isEnabledFor(logging.DEBUG):
                with logs.log_context(request_id=request_id):
                    self._log(scope, route, status, seconds, location, slow)

    @staticmethod
    def _log(scope: Scope, route: str, status: int, seconds: float, location: bytes | None,
             slow: bool) -> None:
        job_id = scope.get("path_params", {}).get("job_id")
        if location and location.startswith(b"/v1/jobs/"):
            job_id = location.decode("latin-1").rsplit("/", 1)[-1]
        fields = {"method": scope["method"], "route": route, "status": status,
                  "duration_ms": round(seconds * 1000, 1)}
        if job_id:
            fields["job_id"] = job_id
        access_log.log(logging.WARNING if slow else logging.DEBUG,
                       "slow request" if slow else "request", extra=fields)
