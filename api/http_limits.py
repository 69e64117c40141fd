"""uvicorn's httptools protocol with the limits it lacks: header size and count, the time headers
may take to arrive, and the connections one process serves.

httptools is uvicorn's fast HTTP parser, and has no limit on header size or count (unfinished
headers grow the process until they end), no time limit on headers that trickle in, and uvicorn
runs it without a connection limit unless told (issue 18 has what a hostile client did with that).
h11 has a header size limit but no count or time limit, and is slower (docs/performance.md has the
measurements). So this subclass counts:

- the bytes of a request's line and headers, as they arrive (also a header not finished yet) and as
  parsed: over MAX_HEADER_BYTES, 431 and the connection is closed;
- the headers: over MAX_HEADERS, 431, parsing stops at the first one over;
- the time from a connection's first byte of headers (or its opening) to their end: over
  HEADER_TIMEOUT_SECONDS, 408 and closed. An idle kept-alive connection is uvicorn's to close
  (`timeout_keep_alive`, 5 s);
- the connections and requests under way in the process: over MAX_CONNECTIONS, 503 and closed
  (as uvicorn's `--limit-concurrency`, with a problem for a body).
It also writes each answer in one write, not two (api/coalesced_writes.py).
Every refusal is a problem+json body, as the app's own, and counted in
`stock_http_connections_refused_total`.

It overrides uvicorn's parser callbacks and `send_400_response`, which are not a public interface:
tests/e2e/test_http_limits.py checks each limit against the real server, so an upgrade of uvicorn
that changes them fails there.
"""

import asyncio
import json
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from api.coalesced_writes import CoalescedWrites
from api.metrics import count_refused_connection
from shared.problems import Problem
from shared.settings import get_settings

LINGER_SECONDS = 2.0


class _Refused(Exception):
    """Raised in a parser callback to stop parsing a request that is refused."""


class LimitedHttpTools(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self.max_header_bytes = settings.max_header_bytes
        self.max_headers = settings.max_headers
        self.header_timeout = settings.header_timeout_seconds
        self.max_connections = settings.max_connections
        self._awaiting_headers = True  # until a request's headers end, and again once it has ended
        self._raw_header_bytes = 0  # as received, finished or not
        self._header_bytes = 0  # as parsed: the URL, names and values
        self._header_count = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[Problem, str] | None = None  # what to answer, and why (for the metric)
        self._boundary = False  # headers or a request ended in the data being parsed
        self._refused = False  # answered and closing: what still arrives is read and dropped

    # uvicorn's protocol interface
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, CoalescedWrites(transport, self.loop)))
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_headers and self._header_timer is None:
            self._arm_header_timer()  # the first byte of a kept-alive connection's next request
        self._boundary = False
        super().data_received(data)
        # All of it was headers, unless headers or a request ended in it: then only what followed
        # the end could be, and it is not counted (at most one read, for a client that sends
        # requests without waiting for answers).
        if self._awaiting_headers and not self._boundary and not self._refused:
            self._raw_header_bytes += len(data)
            if self._raw_header_bytes > self.max_header_bytes:
                self._refuse(self._headers_too_large(), "headers-too-large")

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request the parser gave up on: ours, if we made it give up."""
        if self._refusal is not None:
            self._refuse(*self._refusal)
        else:
            super().send_400_response(msg)

    # Parser callbacks
    def on_message_begin(self) -> None:
        self._header_bytes = 0
        self._header_count = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._refusal = (Problem("headers-too-large", 431,
                                     f"A request takes at most {self.max_headers} headers.",
                                     {"max_headers": self.max_headers}), "too-many-headers")
            raise _Refused
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        self._awaiting_headers = False
        self._boundary = True
        busy = len(self.connections) > self.max_connections or len(self.tasks) >= self.max_connections
        self.app = _overloaded(self.max_connections) if busy else self.config.loaded_app
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_headers = True
        self._boundary = True
        self._raw_header_bytes = 0

    # The limits
    def _count_header_bytes(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._refusal = (self._headers_too_large(), "headers-too-large")
            raise _Refused

    def _headers_too_large(self) -> Problem:
        return Problem("headers-too-large", 431, f"A request's line and headers take at most "
                       f"{self.max_header_bytes} bytes.", {"max_header_bytes": self.max_header_bytes})

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_time_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_time_out(self) -> None:
        self._header_timer = None
        if not self._awaiting_headers or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # an answer is on its way: nothing more may be written into it
            count_refused_connection("header-timeout")
            return
        self._refuse(Problem("header-timeout", 408, f"The request's headers did not arrive within "
                             f"{self.header_timeout:g} s."), "header-timeout")

    def _refuse(self, problem: Problem, reason: str) -> None:
        """Answer with the problem and close, whatever the parser was doing. Closed at once, a
        socket with unread data would be reset, and the client could lose the answer before it
        read it: so the answer is followed by the end of our side of the stream, and what the client
        still sends is read and dropped for LINGER_SECONDS (nginx's lingering close)."""
        count_refused_connection(reason)
        body = json.dumps(problem.to_dict()).encode()
        head = [STATUS_LINE[problem.status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [b"content-type: application/problem+json\r\n",
                 b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n\r\n"]
        self.transport.write(b"".join(head) + body)
        self._refused = True
        self._awaiting_headers = False
        self._cancel_header_timer()
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()


def _overloaded(max_connections: int) -> Any:
    """The ASGI app that answers a request over the connection limit."""
    problem = Problem("overloaded", 503, f"This API process serves at most {max_connections} "
                      "connections at once; retry after a second.", {"retry_after": 1})
    body = json.dumps(problem.to_dict()).encode()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        count_refused_connection("too-many-connections")
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"application/problem+json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"retry-after", b"1"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    return app
