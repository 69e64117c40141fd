"""The HTTP server's limits on headers and connections (api/http_limits.py), against the server as
bin/run starts it (api/server.py), one test per finding of issue 18's hostile partner: each was
answered, or held open, by the httptools server without limits."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import make_key
from tests.support.processes import Process, free_port, start_api

HEADER_TIMEOUT = 1.0
MAX_HEADER_BYTES = 16 * 1024


@pytest.fixture(scope="module")
def server(workers: list) -> Iterator[tuple[Process, str]]:
    """One API process (its memory is measured), with a short header timeout."""
    api, base = start_api({"HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)}, workers=1)
    yield api, base
    api.stop()


def _address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def _connect(base: str, timeout: float = 10) -> socket.socket:
    return socket.create_connection(_address(base), timeout=timeout)


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send what the server may refuse to read to the end (it answers and closes early)."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_1_mb_header_is_refused_with_431(server):
    """Finding: a 1 MB header was answered 200 (httptools has no header size limit)."""
    _, base = server
    with _connect(base) as sock:
        _send_quietly(sock, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n")
        answer = _read_all(sock)
    assert _status(answer) == 431, answer[:300]
    assert b"application/problem+json" in answer and b"/problems/headers-too-large" in answer


def test_20000_headers_are_refused_with_431_and_100_are_served(server):
    """Finding: 20,000 headers were answered 200."""
    _, base = server
    for count, expected in [(20_000, 431), (101, 431), (98, 200)]:
        headers = b"".join(b"X-H%d: 1\r\n" % n for n in range(count))
        with _connect(base) as sock:
            request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n"
            _send_quietly(sock, request)
            answer = _read_all(sock)
        assert _status(answer) == expected, (count, answer[:300])


def test_headers_that_trickle_in_are_cut_off_after_the_header_timeout(server):
    """Finding: 300 connections trickling headers stayed open for 30+ s. Now each is answered 408
    and closed once HEADER_TIMEOUT_SECONDS pass without the end of its headers; so is a connection
    that never sends a byte."""
    _, base = server
    socks = [_connect(base, timeout=HEADER_TIMEOUT + 5) for _ in range(50)]
    silent = _connect(base, timeout=HEADER_TIMEOUT + 5)
    started = time.monotonic()
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed: dict[int, float] = {}
        for _ in range(int(HEADER_TIMEOUT * 10) + 30):  # a byte every 0.1 s while it is open
            for n, sock in enumerate(socks):
                if n not in closed:
                    try:
                        sock.sendall(b"X")
                    except (BrokenPipeError, ConnectionResetError):
                        closed[n] = time.monotonic() - started
            if len(closed) == len(socks):
                break
            time.sleep(0.1)
        assert len(closed) == len(socks), f"{len(socks) - len(closed)} trickling connections still open"
        assert max(closed.values()) < HEADER_TIMEOUT + 3
        assert _status(_read_all(silent)) == 408
    finally:
        for sock in [*socks, silent]:
            sock.close()


def test_big_unfinished_headers_cost_no_memory(server):
    """Finding: 20 unfinished 5 MB headers took the API from 242 to 307 MB. Now each is refused
    once it passes the limit, without waiting for the end, and the process stays about its size."""
    api, base = server
    before = _rss_kib(api.popen.pid)
    socks = [_connect(base) for _ in range(20)]
    try:
        for sock in socks:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        answers = []
        for sock in socks:
            for _ in range(5 * 16):  # up to 5 MB each, in 64 KiB pieces, never finished
                try:
                    sock.sendall(b"a" * 65536)
                except (BrokenPipeError, ConnectionResetError):
                    break
            answers.append(_status(_read_all(sock)))
    finally:
        for sock in socks:
            sock.close()
    assert answers == [431] * 20
    grown_mib = (_rss_kib(api.popen.pid) - before) / 1024
    assert grown_mib < 15, f"the API grew by {grown_mib:.0f} MiB"


def test_bodies_and_headers_under_the_limits_are_served(server):
    """Headers just under the limit, and a large body (which arrives with the headers), pass."""
    _, base = server
    key = make_key({"read", "write", "catalog"}, "limits")
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/v1/stock", headers={"X-Pad": "p" * (MAX_HEADER_BYTES - 2000)}).status_code == 200
        assert c.get("/v1/stock", headers={"X-Pad": "p" * MAX_HEADER_BYTES}).status_code == 431
        lines = [{"type": "receive", "warehouse": "NOPE", "sku": "NOPE", "quantity": 1}] * 10_000
        r = c.post("/v1/batches", json={"mode": "independent", "commands": lines})
        assert len(r.request.content) > 500_000 and r.status_code == 202, r.text


def test_connections_over_the_limit_get_503():
    """Finding: no concurrency limit. Past MAX_CONNECTIONS a request gets 503 (a problem, with
    Retry-After) and its connection is closed; once connections go, requests are served again."""
    api, base = start_api({"MAX_CONNECTIONS": "16", "HEADER_TIMEOUT_SECONDS": "30"}, workers=1)
    held = [_connect(base) for _ in range(16)]
    try:
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers not finished: held open
        time.sleep(0.3)
        r = httpx.get(f"{base}/healthz", timeout=10)
        assert r.status_code == 503 and r.headers["retry-after"] == "1", r.text
        assert r.json()["type"] == "/problems/overloaded"
        for sock in held:
            sock.close()
        time.sleep(0.3)
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
    finally:
        for sock in held:
            sock.close()
        api.stop()


def test_metrics_answer_on_the_metrics_port_only():
    """Compose: the API's metrics are reachable on the internal network only. With API_METRICS_PORT
    the public port answers /metrics with 404 and the metrics port serves it."""
    metrics_port = free_port()
    api, base = start_api({"API_METRICS_PORT": str(metrics_port)})
    try:
        assert httpx.get(f"{base}/metrics", timeout=10).status_code == 404
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        r = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10)
        assert r.status_code == 200 and "stock_http_requests_total" in r.text
    finally:
        api.stop()
