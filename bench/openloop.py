"""An open-loop HTTP load generator: requests start at a fixed rate whatever the answers do, and
each one's time is counted from when it was due, not from when it was sent (so a slow server
cannot hide its queue: no coordinated omission).

It speaks just enough HTTP/1.1 over kept-alive connections for this service and its baseline (a
request with a JSON body, an answer with a Content-Length), because it shares the machine's cores
with what it measures and a full client library spent several times more CPU per request. A
request that finds no idle connection opens a new one (up to MAX_CONNECTIONS), so a slow answer
never delays the next request's start.
"""

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

MAX_CONNECTIONS = 4000
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


@dataclass
class Answer:
    status: int
    body: bytes
    head: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reused = False  # it served a request before this one

    async def send(self, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Answer:
        lines = [f"{method} {path} HTTP/1.1", "Host: bench", *(f"{k}: {v}" for k, v in headers.items())]
        if body or method == "POST":
            lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = CONTENT_LENGTH.search(head)
        payload = await self.reader.readexactly(int(length.group(1))) if length else b""
        return Answer(int(head[9:12]), payload, head)

    def close(self) -> None:
        self.writer.close()


class Pool:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[Connection] = []
        self.opened = 0

    async def take(self, fresh: bool = False) -> Connection:
        if self.idle and not fresh:
            connection = self.idle.pop()
            connection.reused = True
            return connection
        if self.opened >= MAX_CONNECTIONS:
            raise ConnectionError("too many connections")
        self.opened += 1
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        return Connection(reader, writer)

    def give_back(self, connection: Connection) -> None:
        self.idle.append(connection)

    def close(self) -> None:
        for connection in self.idle:
            connection.close()


@dataclass
class Timing:
    """One request's times, in seconds from when it was due (`due`, on time.perf_counter's clock)."""

    due: float = 0.0
    accepted: float | None = None  # the first answer came (202, or the outcome)
    outcome: float | None = None  # the outcome was known
    status: int = 0
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# One client's work: given a connection and the clock's start, fill in a Timing.
Work = Callable[[Connection, Callable[[], float], Timing], Awaitable[None]]


async def _one(pool: Pool, work: Work, due: float, timing: Timing) -> None:
    def elapsed() -> float:
        return time.perf_counter() - due

    try:
        connection = await pool.take()
    except (OSError, ConnectionError) as exc:
        timing.error = type(exc).__name__
        return
    try:
        await work(connection, elapsed, timing)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        connection.close()
        if not (connection.reused and timing.accepted is None):
            timing.error = type(exc).__name__
            return
        # A kept-alive connection the server had closed meanwhile (its idle timeout): once more,
        # on a new one, as any HTTP client does. The time still counts from when it was due.
        try:
            connection = await pool.take(fresh=True)
            await work(connection, elapsed, timing)
        except (OSError, asyncio.IncompleteReadError, ValueError, ConnectionError) as again:
            timing.error = type(again).__name__
            connection.close()
            return
    pool.give_back(connection)


async def _drive(url: str, rate: float, seconds: float, make_work: Callable[[int], Work]) -> list[Timing]:
    host, port = url.removeprefix("http://").split(":")
    pool = Pool(host, int(port))
    timings: list[Timing] = []
    tasks = []
    start = time.perf_counter() + 0.05
    for n in range(int(rate * seconds)):
        due = start + n / rate
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        timing = Timing(due)
        timings.append(timing)
        tasks.append(asyncio.create_task(_one(pool, make_work(n), due, timing)))
    await asyncio.gather(*tasks)
    pool.close()
    return timings


def drive(url: str, rate: float, seconds: float, make_work: Callable[[int], Work]) -> list[Timing]:
    """Start `rate` requests a second for `seconds`; returns each request's timing."""
    try:
        import uvloop
        return uvloop.run(_drive(url, rate, seconds, make_work))
    except ImportError:
        return asyncio.run(_drive(url, rate, seconds, make_work))
