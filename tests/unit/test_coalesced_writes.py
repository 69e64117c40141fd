"""The API's transport wrapper: an answer's headers and body leave in one write, nothing is held
past the event loop's turn, and ending or closing the stream sends what is held first."""

import asyncio

from api.coalesced_writes import CoalescedWrites


class RecordingTransport:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def write_eof(self) -> None:
        self.calls.append(("eof", b""))

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", b""))

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def _in_loop(body) -> RecordingTransport:  # noqa: ANN001
    transport = RecordingTransport()

    async def run() -> None:
        await body(CoalescedWrites(transport, asyncio.get_running_loop()), transport)  # type: ignore[arg-type]

    asyncio.run(run())
    return transport


def test_headers_and_body_written_in_one_turn_go_out_as_one_write_at_once():
    async def answer(writes, transport):
        writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
        assert transport.calls == []  # held for what follows
        writes.write(b"{}")
        assert transport.calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n{}")]  # not at the turn's end
        await asyncio.sleep(0)

    assert _in_loop(answer).calls == [("write", b"HTTP/1.1 200 OK\r\n\r\n{}")]


def test_a_lone_write_leaves_by_the_end_of_the_turn():
    async def stream_headers(writes, transport):
        writes.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        await asyncio.sleep(0)
        assert transport.calls == [("write", b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")]
        writes.write(b"5\r\nfirst\r\n")
        await asyncio.sleep(0)

    assert [data for _, data in _in_loop(stream_headers).calls] == [
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", b"5\r\nfirst\r\n"]


def test_ending_and_closing_send_what_is_held_first():
    async def refuse(writes, _):
        writes.write(b"HTTP/1.1 431 \r\n\r\n")
        writes.write_eof()
        writes.write(b"late")
        writes.close()
        await asyncio.sleep(0)

    assert _in_loop(refuse).calls == [("write", b"HTTP/1.1 431 \r\n\r\n"), ("eof", b""),
                                      ("write", b"late"), ("close", b"")]


def test_what_is_held_when_the_connection_goes_is_dropped():
    async def lost(writes, transport):
        writes.write(b"HTTP/1.1 200 OK\r\n\r\n")
        transport.closing = True  # the peer went away before the turn ended
        await asyncio.sleep(0)

    assert _in_loop(lost).calls == []


def test_everything_else_is_the_transports():
    async def ask(writes, _):
        assert writes.get_extra_info("peername") == "info:peername"

    _in_loop(ask)
