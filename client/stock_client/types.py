"""The shapes of the service's answers, as docs/api.md gives them: dicts, typed for the reader and
for a type checker (the client returns the JSON it was sent, unchanged)."""

from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar

JobStatus = Literal["queued", "running", "succeeded", "failed", "partially_failed"]
TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "partially_failed"})

# A stock command as docs/api.md lists them: {"type": "receive", "warehouse": ..., ...}.
Command = dict[str, Any]

T = TypeVar("T")


class Accepted(TypedDict):
    """The 202 answer to a command or batch: its job, still to be applied."""

    job_id: str
    kind: Literal["command", "batch"]
    status: str
    submitted_at: str


class Job(TypedDict):
    """`GET /v1/jobs/{job_id}`, and the answer to a submission that waited for the outcome."""

    job_id: str
    kind: Literal["command", "batch"]
    status: JobStatus
    submitted_at: str
    started_at: NotRequired[str | None]
    completed_at: NotRequired[str | None]
    result: NotRequired[dict[str, Any] | None]
    error: NotRequired[dict[str, Any] | None]


class JobLine(TypedDict):
    line: int
    status: str
    error: NotRequired[dict[str, Any] | None]
    result: NotRequired[dict[str, Any] | None]


class StockLevel(TypedDict):
    warehouse: str
    sku: str
    on_hand: int
    reserved: int
    available: int
    version: int
    updated_at: str | None
    reorder_point: int | None


class LedgerEntry(TypedDict):
    id: int
    warehouse: str
    sku: str
    type: str
    delta: int
    on_hand_after: int
    reserved_delta: int
    reserved_after: int
    version: int
    job_id: str | None
    line: int | None
    reference: str | None
    reason: str | None
    recorded_at: str


class Reservation(TypedDict):
    reservation: str
    warehouse: str
    sku: str
    quantity: int
    committed: int
    status: Literal["active", "committed", "released", "expired"]
    expires_at: str


class Page(TypedDict, Generic[T]):
    """One page of a list; pass `next_cursor` back as `cursor` for the next (None: the last page)."""

    items: list[T]
    next_cursor: str | None
