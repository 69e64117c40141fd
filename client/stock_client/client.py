"""StockClient: the service's routes for an integration, each a typed method, every request sent
through the retry policy (stock_client/retrying.py)."""

import time
import uuid
from collections.abc import Iterable
from typing import Any, cast
from urllib.parse import quote

import httpx

from .retrying import RetryPolicy
from .types import (
    TERMINAL,
    Accepted,
    Command,
    Job,
    JobLine,
    LedgerEntry,
    Page,
    Reservation,
    StockLevel,
)

MAX_WAIT = 30  # the longest `Prefer: wait` the service holds a request for


class StockClientError(Exception):
    """The service refused the request (a 4xx other than 429, or a 5xx or 429 that outlasted the
    retries), with its problem body (RFC 9457)."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('type')}: {problem.get('detail')}")
        self.status = status
        self.problem = problem


class StockClient:
    """`with StockClient(url, key) as stock: stock.run({...})`. Not shared between threads."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0, max_attempts: int = 8,
                 max_backoff: float = 10.0, retry: RetryPolicy | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key}"})
        self.retry = retry or RetryPolicy(max_attempts=max_attempts, max_backoff=max_backoff)

    def __enter__(self) -> "StockClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # Commands: queue them, or run them (queue and wait for the outcome).

    def submit_command(self, command: Command, idempotency_key: str | None = None,
                       wait: int = 0) -> Accepted | Job:
        """Queue one command: the 202 body, or with `wait` seconds (`Prefer: wait`, at most 30) the
        job itself if it ended within them."""
        return self._submit("/v1/commands", command, idempotency_key, wait)

    def submit_batch(self, commands: list[Command], mode: str = "atomic",
                     idempotency_key: str | None = None, wait: int = 0) -> Accepted | Job:
        """Queue a batch (`atomic` or `independent`), as submit_command."""
        return self._submit("/v1/batches", {"mode": mode, "commands": commands}, idempotency_key, wait)

    def run(self, command: Command, timeout: float = 60.0, idempotency_key: str | None = None) -> Job:
        """Submit one command and wait for its outcome: on the POST itself (`Prefer: wait`), then by
        long-polling the job. Before `timeout` passes the job is terminal; after it, maybe not."""
        answer = self.submit_command(command, idempotency_key, wait=_first_wait(timeout))
        return self._finish(answer, timeout)

    def run_batch(self, commands: list[Command], mode: str = "atomic", timeout: float = 60.0,
                  idempotency_key: str | None = None) -> Job:
        """Submit a batch and wait for its outcome, as run."""
        answer = self.submit_batch(commands, mode, idempotency_key, wait=_first_wait(timeout))
        return self._finish(answer, timeout)

    def reserve(self, warehouse: str, sku: str, quantity: int, reservation: str, *,
                expires_in: int | None = None, reference: str | None = None,
                timeout: float = 60.0) -> Job:
        """Hold `quantity` units for `reservation` (the caller's id) for `expires_in` seconds (the
        service's default: 900). The same reserve again is the same reservation."""
        command: Command = {"type": "reserve", "warehouse": warehouse, "sku": sku, "quantity": quantity,
                            "reservation": reservation}
        return self.run(_with(command, expires_in=expires_in, reference=reference), timeout)

    def commit(self, reservation: str, quantity: int | None = None, *, reference: str | None = None,
               timeout: float = 60.0) -> Job:
        """Issue the reservation's held units: all of them, or `quantity` (the rest stays held)."""
        command = _with({"type": "commit", "reservation": reservation}, quantity=quantity,
                        reference=reference)
        return self.run(command, timeout)

    def release(self, reservation: str, *, reference: str | None = None, timeout: float = 60.0) -> Job:
        """Give the reservation's held units back."""
        return self.run(_with({"type": "release", "reservation": reservation}, reference=reference),
                        timeout)

    # Jobs.

    def get_job(self, job_id: str, wait: int = 0) -> Job:
        """The job; with `wait` (at most 30) held until it ends or the seconds pass."""
        headers = {"Prefer": f"wait={wait}"} if wait else {}
        return cast(Job, self._json("GET", f"/v1/jobs/{_segment(job_id)}", headers=headers,
                                    read_timeout=wait + 10 if wait else None))

    def get_jobs(self, job_ids: Iterable[str], wait: int = 0) -> list[Job]:
        """Up to 100 of the caller's jobs at once (unknown ids are left out); with `wait`, held
        until all have ended or the seconds pass."""
        headers = {"Prefer": f"wait={wait}"} if wait else {}
        body = self._json("GET", "/v1/jobs", params={"ids": ",".join(job_ids)}, headers=headers,
                          read_timeout=wait + 10 if wait else None)
        return cast(list[Job], body["items"])

    def job_lines(self, job_id: str, *, status: str | None = None, limit: int | None = None,
                  cursor: str | None = None) -> Page[JobLine]:
        """A batch's lines, `status` "failed" or "succeeded" to choose."""
        params = _params(status=status, limit=limit, cursor=cursor)
        return cast(Page[JobLine], self._json("GET", f"/v1/jobs/{_segment(job_id)}/lines", params=params))

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Long-poll the job (`Prefer: wait`) until it is terminal or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get_job(job_id, wait=max(0, min(MAX_WAIT, int(deadline - time.monotonic()))))
            if job["status"] in TERMINAL or time.monotonic() >= deadline:
                return job

    # Reads, straight from the database.

    def get_stock(self, warehouse: str, sku: str, *, as_of: str | None = None) -> StockLevel:
        """One level; `as_of` (RFC 3339) for the level as it was then."""
        path = f"/v1/stock/{_segment(warehouse)}/{_segment(sku)}"
        return cast(StockLevel, self._json("GET", path, params=_params(as_of=as_of)))

    def list_stock(self, *, warehouse: str | None = None, sku: str | None = None,
                   limit: int | None = None, cursor: str | None = None) -> Page[StockLevel]:
        params = _params(warehouse=warehouse, sku=sku, limit=limit, cursor=cursor)
        return cast(Page[StockLevel], self._json("GET", "/v1/stock", params=params))

    def ledger(self, *, warehouse: str | None = None, sku: str | None = None, type: str | None = None,
               job_id: str | None = None, since: str | None = None, until: str | None = None,
               limit: int | None = None, cursor: str | None = None) -> Page[LedgerEntry]:
        """Ledger entries, oldest first."""
        params = _params(warehouse=warehouse, sku=sku, type=type, job_id=job_id, since=since,
                         until=until, limit=limit, cursor=cursor)
        return cast(Page[LedgerEntry], self._json("GET", "/v1/ledger", params=params))

    def get_reservation(self, reservation: str) -> Reservation:
        return cast(Reservation, self._json("GET", f"/v1/reservations/{_segment(reservation)}"))

    # Sending.

    def _finish(self, answer: Accepted | Job, timeout: float) -> Job:
        if answer["status"] in TERMINAL:
            return cast(Job, answer)
        return self.wait(answer["job_id"], timeout)

    def _submit(self, path: str, body: dict[str, Any], idempotency_key: str | None,
                wait: int) -> Accepted | Job:
        # Made once, before the first try: every retry carries the same key.
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        if wait:
            headers["Prefer"] = f"wait={wait}"
        return cast(Accepted | Job, self._json("POST", path, json=body, headers=headers,
                                               read_timeout=wait + 10 if wait else None))

    def _json(self, method: str, path: str, read_timeout: float | None = None, **kwargs: Any) -> Any:
        return self._request(method, path, read_timeout, **kwargs).json()

    def _request(self, method: str, path: str, read_timeout: float | None = None,
                 **kwargs: Any) -> httpx.Response:
        """Send with retries; a waiting request gets a read timeout longer than its wait."""
        if read_timeout:
            kwargs["timeout"] = httpx.Timeout(self._http.timeout.connect or 10, read=read_timeout)
        response = self.retry.send(lambda: self._http.request(method, path, **kwargs))
        if response.status_code >= 400:
            raise StockClientError(response.status_code, _problem(response))
        return response


def _first_wait(timeout: float) -> int:
    """The wait to ask for on the POST itself: the service holds at most 30 s."""
    return max(1, min(MAX_WAIT, int(timeout)))


def _segment(value: str) -> str:
    return quote(value, safe="")


def _params(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _with(command: Command, **optional: Any) -> Command:
    return {**command, **_params(**optional)}


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        return response.json()
    except ValueError:
        return {"type": "about:blank", "detail": response.text[:200]}
