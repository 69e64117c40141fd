"""A client for integrations: submit a command or batch, retry safely, wait for the result.

    from stock_client import StockClient      # installed: pip install ./client
    # in this repository: from client.stock_client import StockClient
    with StockClient("http://127.0.0.1:8000", api_key) as stock:
        job = stock.run({"type": "receive", "warehouse": "SEL-1", "sku": "BOOK-001", "quantity": 5})

`run` and `run_batch` (and `reserve`, `commit`, `release`) ask the service to answer with the
outcome (`Prefer: wait`): one round trip when the job ends within the wait, a long poll of the job
after that. Every submission carries an Idempotency-Key (made here unless given), and every retry
reuses it, so a retry after a lost response or a dropped connection never applies the command twice
(a replay that waits answers with the original job's outcome). Network errors, 429, 502, 503 and
504 are retried with jitter, after the server's Retry-After when it sends one (retrying.py).

A distribution of its own (client/pyproject.toml, `stock-client`): it needs httpx and tenacity only.
Imports inside the package are relative, so the same files serve as `stock_client` when installed
and as `client.stock_client` in the repository.
"""

from .client import StockClient, StockClientError
from .retrying import RETRY_STATUSES, RetryPolicy, parse_retry_after
from .types import (
    TERMINAL,
    Accepted,
    Command,
    Job,
    JobLine,
    JobStatus,
    LedgerEntry,
    Page,
    Reservation,
    StockLevel,
)

__all__ = [
    "RETRY_STATUSES",
    "TERMINAL",
    "Accepted",
    "Command",
    "Job",
    "JobLine",
    "JobStatus",
    "LedgerEntry",
    "Page",
    "Reservation",
    "RetryPolicy",
    "StockClient",
    "StockClientError",
    "StockLevel",
    "parse_retry_after",
]
