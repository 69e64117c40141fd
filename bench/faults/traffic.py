"""The campaign's clients: a mixed load over HTTP that retries the way a careful partner does, and
a record of every answer it got.

Every kind of submission the contract has: single commands of each type (some without an
Idempotency-Key, so the fast path is in the mix), atomic and independent batches, deliberate
replays of an answered request (same key, same body), and racing duplicates (the same key and body
sent concurrently). A request with a key is retried with that key on 503, 429, any other 5xx and
connection errors until it gets an answer or its deadline passes; one without a key is retried
only on 503 and 429 (the service wrote nothing then), since after a lost answer the client cannot
know whether it was accepted.
"""

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

COMMAND_TYPES = ("receive", "issue", "adjust", "count", "transfer", "reserve", "commit", "release")
COMMAND_WEIGHTS = (3, 3, 1, 1, 2, 2, 1, 1)
# Reservations held long enough to be committed or released, short enough that many expire.
HOLD_SECONDS = (1, 8)
# What a client does next: a single command, a batch of each mode, a racing duplicate, a replay.
ACTIONS = ("command", "atomic", "independent", "race", "replay")
ACTION_WEIGHTS = (12, 2, 2, 2, 2)
KEYLESS_SHARE = 0.25


@dataclass
class Tally:
    """What the clients saw. `answers` maps each Idempotency-Key to the job ids its 202s named
    (more than one is a duplicate); `accepted` maps each job id to when the request that first
    got it was sent; `in_flight` holds when each unanswered request was sent."""

    counts: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    answers: dict[str, set[str]] = field(default_factory=dict)
    accepted: dict[str, float] = field(default_factory=dict)
    in_flight: dict[int, float] = field(default_factory=dict)
    _next: int = 0

    def started(self) -> int:
        self._next += 1
        self.in_flight[self._next] = time.monotonic()
        return self._next

    def open_since_before(self, moment: float) -> bool:
        """Whether a request sent before `moment` is still waiting for its final answer."""
        return any(t < moment for t in self.in_flight.values())


class Clients:
    """Submits work to `urls` (the first is the service's API) with one API key."""

    def __init__(self, http: aiohttp.ClientSession, authorization: str, tally: Tally,
                 catalog: tuple[list[str], list[str]], give_up_seconds: float, seed: int = 0) -> None:
        self.http = http
        self.headers = {"Authorization": authorization}
        self.tally = tally
        self.warehouses, self.skus = catalog
        self.give_up_seconds = give_up_seconds
        self.rng = random.Random(seed)
        self.recent: list[tuple[str, str, dict[str, Any]]] = []  # (path, key, body) answered 202
        self.reservations: list[str] = []  # ids of reserves sent lately, to commit or release

    def command(self, kind: str | None = None, warehouse: str | None = None) -> dict[str, Any]:
        rng = self.rng
        kind = kind or rng.choices(COMMAND_TYPES, COMMAND_WEIGHTS)[0]
        warehouse = warehouse or rng.choice(self.warehouses)
        sku = rng.choice(self.skus)
        if kind == "transfer":
            to = rng.choice([w for w in self.warehouses if w != warehouse])
            return {"type": kind, "from_warehouse": warehouse, "to_warehouse": to, "sku": sku,
                    "quantity": rng.randint(1, 5)}
        if kind == "adjust":
            return {"type": kind, "warehouse": warehouse, "sku": sku, "reason": "fault campaign",
                    "delta": rng.choice([-1, 1]) * rng.randint(1, 4)}
        if kind == "count":
            return {"type": kind, "warehouse": warehouse, "sku": sku, "on_hand": rng.randint(5, 60)}
        if kind == "reserve":
            reservation = f"f-{uuid.UUID(int=rng.getrandbits(128)).hex[:16]}"
            self.reservations = [*self.reservations[-199:], reservation]
            return {"type": kind, "warehouse": warehouse, "sku": sku, "quantity": rng.randint(1, 4),
                    "reservation": reservation, "expires_in": rng.randint(*HOLD_SECONDS)}
        if kind in ("commit", "release"):
            # Sometimes one that was never reserved: an unknown-reservation failure is in the mix.
            reservation = rng.choice(self.reservations) if self.reservations else "f-never-reserved"
            return {"type": kind, "reservation": reservation}
        return {"type": kind, "warehouse": warehouse, "sku": sku,
                "quantity": rng.randint(1, 5) if kind == "receive" else rng.randint(1, 8)}

    async def act(self, url: str) -> None:
        """One action of the mixed load."""
        action = self.rng.choices(ACTIONS, ACTION_WEIGHTS)[0]
        if action == "replay" and self.recent:
            path, key, body = self.rng.choice(self.recent)
            self.tally.counts["replays sent"] += 1
            await self.send(url, path, body, key)
        elif action in ("atomic", "independent"):
            lines = [self.command() for _ in range(self.rng.randint(2, 6))]
            await self.send(url, "/v1/batches", {"mode": action, "commands": lines}, str(uuid.uuid4()))
        elif action == "race":
            key, body = str(uuid.uuid4()), self.command()
            self.tally.counts["races sent"] += 1
            copies = self.rng.randint(2, 4)
            await asyncio.gather(*(self.send(url, "/v1/commands", body, key) for _ in range(copies)))
        else:
            keyless = self.rng.random() < KEYLESS_SHARE
            await self.send(url, "/v1/commands", self.command(), None if keyless else str(uuid.uuid4()))

    async def send(self, url: str, path: str, body: dict[str, Any], key: str | None) -> str | None:
        """POST until a final answer; returns the job id of a 202."""
        tally = self.tally
        ticket = tally.started()
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        deadline = time.monotonic() + self.give_up_seconds
        attempt = 0
        try:
            while True:
                attempt += 1
                if attempt > 1:
                    tally.counts["retries"] += 1
                try:
                    async with self.http.post(url + path, json=body, headers=headers) as r:
                        status, replayed = r.status, r.headers.get("Idempotent-Replayed") == "true"
                        retry_after = r.headers.get("Retry-After", "")
                        answer = await r.json(content_type=None) if status == 202 else None
                except (TimeoutError, aiohttp.ClientError):
                    tally.counts["connection errors"] += 1
                    if key is None:
                        # Maybe accepted: a retry without a key could make a second job.
                        tally.counts["unknown outcome"] += 1
                        return None
                    status, retry_after = 0, ""
                else:
                    tally.statuses[status] += 1
                if status == 202:
                    sent = tally.in_flight[ticket]
                    return self._accepted(path, body, key, answer["job_id"], replayed, sent)
                retry = status in (0, 429, 503) or (status >= 500 and key is not None)
                if not retry:
                    if status >= 500:
                        tally.counts["unknown outcome"] += 1
                    return None
                if time.monotonic() > deadline:
                    tally.counts["gave up"] += 1
                    return None
                await asyncio.sleep(_pause(retry_after, attempt, self.rng))
        finally:
            del tally.in_flight[ticket]

    def _accepted(self, path: str, body: dict[str, Any], key: str | None, job_id: str,
                  replayed: bool, sent: float) -> str:
        tally = self.tally
        tally.accepted.setdefault(job_id, sent)
        if replayed:
            tally.counts["replayed answers"] += 1
        if key is not None:
            tally.answers.setdefault(key, set()).add(job_id)
            self.recent = [*self.recent[-49:], (path, key, body)]
        return job_id

    async def run(self, url: str, stop: asyncio.Event, pause: float) -> None:
        """Act until `stop` is set, pausing up to `pause` seconds between actions."""
        while not stop.is_set():
            await self.act(url)
            await asyncio.sleep(self.rng.uniform(0, pause))

    async def burst(self, url: str, size: int) -> None:
        """SIZE single commands at once, each with a key and retried as ever."""
        await asyncio.gather(*(self.send(url, "/v1/commands", self.command(), str(uuid.uuid4()))
                               for _ in range(size)))


def _pause(retry_after: str, attempt: int, rng: random.Random) -> float:
    """The server's Retry-After, capped, with jitter; else exponential backoff from 0.1 s."""
    if retry_after.isdigit():
        return min(5.0, float(retry_after)) * rng.uniform(0.8, 1.2)
    return min(2.0, 0.1 * 2 ** (attempt - 1)) * rng.uniform(0.5, 1.0)
