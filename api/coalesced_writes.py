"""One socket write per answer instead of two.

uvicorn writes an answer's status line and headers when the app starts the answer, and its body
when the app sends it: two `send` system calls and two TCP segments for every small answer, which
the event loop pays while holding the GIL. This transport holds a write until the next write or
the end of the event loop's turn, whichever comes first: the headers then go out with the body in
one write, at once, and headers whose body comes later (a stream) leave by the end of the turn.
"""

import asyncio
from typing import Any


class CoalescedWrites:
    """Wraps the connection's transport; everything but writing, ending and closing is the
    transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = data
            self._loop.call_soon(self._flush)
            return
        held, self._held = self._held, None
        self._transport.write(held + data)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
