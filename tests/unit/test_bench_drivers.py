"""The benchmark's load drivers (bench/load.py): they send the commands bench/load.py seeds for, each
receive followed by an issue of the same level, with the caller's key, and count what they saw.
Driven against a small recording server for a second; wrk is Debian's package (`.ci/run` installs it)."""

import json
import shutil
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.load import DRIVERS
from shared.schemas.commands import command_adapter

REFUSE_EVERY = 7  # every 7th request gets a 429


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.bodies: list[dict] = []
        self.authorizations: set[str | None] = set()
        self.refused = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the drivers expect
    server: Recorder

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.bodies.append(body)
            self.server.authorizations.add(self.headers.get("Authorization"))
            refuse = len(self.server.bodies) % REFUSE_EVERY == 0
            self.server.refused += refuse
        answer = b'{"status": "queued"}'
        self.send_response(429 if refuse else 202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder():
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("driver", sorted(DRIVERS))
def test_driver_sends_paired_commands_on_seeded_levels_and_counts_refusals(recorder, driver):
    if driver == "wrk":
        assert shutil.which("wrk"), "wrk is not installed (Debian: apt-get install wrk; .ci/run does)"
    url = f"http://127.0.0.1:{recorder.server_address[1]}"

    load = DRIVERS[driver](url, "Bearer sk_test_secret", (3, 40), 4, 1.0, 202)

    bodies = recorder.bodies
    assert len(bodies) > 50
    commands = [command_adapter.validate_python(body) for body in bodies]
    seeded = {(f"LW-{w:02d}", f"LS-{s:05d}") for w in range(3) for s in range(40)}
    levels = Counter()
    for command in commands:
        assert command.type in ("receive", "issue") and command.quantity == 1
        assert (command.warehouse, command.sku) in seeded
        levels[(command.warehouse, command.sku)] += 1 if command.type == "receive" else -1
    # Every receive is paired with an issue of the same level: only requests still in flight when
    # the run ended (one per client at most) may be missing from a pair.
    assert sum(abs(net) for net in levels.values()) <= 4, {k: n for k, n in levels.items() if n}
    assert len(levels) > 10  # spread over the levels, not one
    assert recorder.authorizations == {"Bearer sk_test_secret"}
    # Answers the driver read: at most the clients' last requests went unanswered.
    assert len(bodies) - 4 <= load.accepted + load.refused <= len(bodies)
    assert recorder.refused - 4 <= load.refused <= recorder.refused
    assert 0.9 <= load.seconds <= 3
    assert 0 < load.p50_ms <= load.p99_ms


def test_drivers_can_send_without_a_key(recorder):
    assert shutil.which("wrk"), "wrk is not installed (Debian: apt-get install wrk; .ci/run does)"
    DRIVERS["wrk"](f"http://127.0.0.1:{recorder.server_address[1]}", "", (1, 1), 2, 1.0, 200)
    assert recorder.authorizations == {None}
    assert {(b["warehouse"], b["sku"]) for b in recorder.bodies} == {("LW-00", "LS-00000")}
