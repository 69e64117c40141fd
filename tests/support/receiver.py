"""A webhook receiver for the tests: a real HTTP server in a thread, whose answers the test sets
(200, 500, 410, a hang, or down altogether), recording every request it got."""

import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]
    body: str
    at: float
    path: str = ""
    peer_port: int = 0  # the sender's side of the connection: one port, one kept-alive connection


@dataclass
class Receiver:
    status: int = 200
    delay: float = 0.0  # seconds before answering
    tls: ssl.SSLContext | None = None  # serve HTTPS with this server-side context
    # HTTP/1.1 connections kept alive; off by default, since a kept connection would still be
    # served after stop() and the receiver would not be down.
    keep_alive: bool = False
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if receiver.keep_alive else "HTTP/1.0"

            def do_POST(self) -> None:  # noqa: N802  (the standard library's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                with receiver._lock:
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                    receiver.received.append(Received(dict(self.headers), body, time.monotonic(),
                                                       self.path, self.client_address[1]))
                    status, delay = receiver.status, receiver.delay
                if delay:
                    time.sleep(delay)
                with receiver._lock:  # answered from here on, as the sender will see it
                    receiver.in_flight -= 1
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: connections are refused until it starts again (on the same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
