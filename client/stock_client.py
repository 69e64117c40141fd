"""A small client for integrations: submit a command or batch, retry safely, wait for the result.

    from client.stock_client import StockClient
    with StockClient("http://127.0.0.1:8000", api_key) as stock:
        job = stock.run({"type": "receive", "warehouse": "SEL-1", "sku": "BOOK-001", "quantity": 5})

`run` and `run_batch` ask the service to answer with the outcome (`Prefer: wait`): one round trip
when the job ends within the wait, a long poll of the job after that. Every submission carries an
Idempotency-Key (made here unless given), and every retry reuses it, so a retry after a lost
response or a dropped connection never applies the command twice (a replay that waits answers with
the original job's outcome). 503 and 429 are retried after the server's Retry-After; network
errors with exponential backoff.
"""

import time
import uuid
from typing import Any

import httpx

RETRY_STATUSES = {429, 503}
TERMINAL = {"succeeded", "failed", "partially_failed"}


class StockClientError(Exception):
    """The service refused the request for good (4xx other than 429), with its problem body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        super().__init__(f"{status} {problem.get('type')}: {problem.get('detail')}")
        self.status = status
        self.problem = problem


class StockClient:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0, max_attempts: int = 8,
                 max_backoff: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {api_key}"})
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff

    def __enter__(self) -> "StockClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def submit_command(self, command: dict[str, Any], idempotency_key: str | None = None,
                       wait: int = 0) -> dict[str, Any]:
        """Queue one command; returns the 202 body ({job_id, status, ...}), or with `wait` seconds
        the job itself if it ended within them."""
        return self._submit("/v1/commands", command, idempotency_key, wait)

    def submit_batch(self, commands: list[dict[str, Any]], mode: str = "atomic",
                     idempotency_key: str | None = None, wait: int = 0) -> dict[str, Any]:
        return self._submit("/v1/batches", {"mode": mode, "commands": commands}, idempotency_key, wait)

    def wait(self, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Long-poll the job (Prefer: wait) until it is terminal or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            wait = max(0, min(30, int(left)))
            job = self._request("GET", f"/v1/jobs/{job_id}", headers={"Prefer": f"wait={wait}"},
                                read_timeout=wait + 10).json()
            if job["status"] in TERMINAL or time.monotonic() >= deadline:
                return job

    def run(self, command: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """Submit one command and wait for its outcome."""
        return self._finish(self.submit_command(command, wait=_first_wait(timeout)), timeout)

    def run_batch(self, commands: list[dict[str, Any]], mode: str = "atomic",
                  timeout: float = 60.0) -> dict[str, Any]:
        """Submit a batch and wait for its outcome."""
        return self._finish(self.submit_batch(commands, mode, wait=_first_wait(timeout)), timeout)

    def _finish(self, answer: dict[str, Any], timeout: float) -> dict[str, Any]:
        if answer["status"] in TERMINAL:
            return answer
        return self.wait(answer["job_id"], timeout)

    def _submit(self, path: str, body: dict[str, Any], idempotency_key: str | None,
                wait: int) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        if wait:
            headers["Prefer"] = f"wait={wait}"
        return self._request("POST", path, json=body, headers=headers,
                             read_timeout=wait + 10 if wait else None).json()

    def _request(self, method: str, path: str, read_timeout: float | None = None,
                 **kwargs: Any) -> httpx.Response:
        timeout = httpx.Timeout(self._http.timeout.connect or 10, read=read_timeout) if read_timeout else None
        for attempt in range(1, self.max_attempts + 1):
            try:
                extra = {"timeout": timeout} if timeout else {}
                response = self._http.request(method, path, **kwargs, **extra)
            except httpx.TransportError:
                if attempt == self.max_attempts:
                    raise
                time.sleep(self._backoff(attempt))
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.max_attempts:
                time.sleep(self._retry_after(response, attempt))
                continue
            if response.status_code >= 400:
                raise StockClientError(response.status_code, _problem(response))
            return response
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return min(self.max_backoff, 0.2 * 2 ** (attempt - 1))

    def _retry_after(self, response: httpx.Response, attempt: int) -> float:
        header = response.headers.get("Retry-After", "")
        return min(self.max_backoff, float(header)) if header.isdigit() else self._backoff(attempt)


def _first_wait(timeout: float) -> int:
    """The wait to ask for on the POST itself: the service holds at most 30 s."""
    return max(1, min(30, int(timeout)))


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        return response.json()
    except ValueError:
        return {"type": "about:blank", "detail": response.text[:200]}
