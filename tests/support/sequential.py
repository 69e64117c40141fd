"""Clients that send one command after another, each only once the previous one was accepted, and
keep sending through restarts and network faults: what a careful integration does. Each client's
commands must be applied in the order it sent them (docs/design.md, order per warehouse).

A command carries an Idempotency-Key and is sent again, with that key, on a connection error, any
5xx or a 429, to the next API in the list, until it gets a 202: a command the API accepted before
its answer was lost is then answered with the same job, never made twice.
"""

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

RETRIED_STATUSES = {429} | set(range(500, 600))


@dataclass
class Sent:
    """What one client sent and was told: its job ids in sending order, and how often it retried."""

    warehouse: str
    sku: str
    job_ids: list[str] = field(default_factory=list)
    retries: int = 0
    accepted_at: list[float] = field(default_factory=list)  # time.monotonic() of each 202


class SequentialClient:
    """Receive 1, issue 1, again and again, on one (warehouse, sku) with no opening stock: an
    issue applied before its receive would fail for want of stock."""

    def __init__(self, urls: Callable[[], list[str]], auth: dict[str, str], warehouse: str, sku: str,
                 pause: float = 0.01, give_up_seconds: float = 60, first: int = 0) -> None:
        self.sent = Sent(warehouse, sku)
        self._urls = urls
        self._auth = auth
        self._pause = pause
        self._give_up = give_up_seconds
        self._turn = first  # which API of the list it sends to, until one fails it
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"client-{warehouse}")
        self._thread.start()

    def _run(self) -> None:
        try:
            with httpx.Client(headers=self._auth, timeout=10) as http:
                while not self._stop.is_set():
                    for kind in ("receive", "issue"):
                        self._send(http, {"type": kind, "warehouse": self.sent.warehouse,
                                          "sku": self.sent.sku, "quantity": 1})
                    time.sleep(self._pause)
        except BaseException as exc:  # noqa: BLE001  (reported by stop())
            self.error = exc

    def _send(self, http: httpx.Client, command: dict) -> None:
        key = str(uuid.uuid4())
        deadline = time.monotonic() + self._give_up
        while True:
            urls = self._urls()
            url = urls[self._turn % len(urls)]
            try:
                r = http.post(f"{url}/v1/commands", json=command, headers={"Idempotency-Key": key})
                if r.status_code == 202:
                    self.sent.job_ids.append(r.json()["job_id"])
                    self.sent.accepted_at.append(time.monotonic())
                    return
                if r.status_code not in RETRIED_STATUSES:
                    raise AssertionError(f"{url} answered {r.status_code}: {r.text}")
            except httpx.TransportError:
                pass
            # The next API, as a load balancer would send the retry elsewhere.
            self._turn += 1
            self.sent.retries += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"no API accepted {command} within {self._give_up} s")
            time.sleep(0.05)

    def stop(self) -> Sent:
        self._stop.set()
        self._thread.join(self._give_up + 15)
        if self.error is not None:
            raise AssertionError(f"client on {self.sent.warehouse} failed") from self.error
        return self.sent
