"""Response bodies of the synchronous routes, and the query time type; the request bodies the CLI
shares are in shared/schemas/."""

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    computed_field,
)

from shared.clock import parse_utc


class WarehouseOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "code": "SEL-1", "name": "Selby distribution centre", "address": "Unit 4, Canal Road, Selby",
        "active": True, "created_at": "2026-12-01T09:30:00.000Z", "updated_at": "2026-12-01T09:30:00.000Z"}]})

    code: str
    name: str
    address: str | None
    active: bool
    created_at: str
    updated_at: str


class ProductOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "sku": "TEE-RED-M", "name": "T-shirt, red, M", "unit": "piece",
        "created_at": "2026-12-01T09:30:00.000Z", "updated_at": "2026-12-01T09:30:00.000Z"}]})

    sku: str
    name: str
    unit: str
    created_at: str
    updated_at: str


class StockOut(BaseModel):
    """A stock level: on hand, held for reservations, and available to promise (on hand - reserved)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "warehouse": "SEL-1", "sku": "TEE-RED-M", "on_hand": 21, "reserved": 1, "version": 4,
        "updated_at": "2026-12-01T09:30:00.000Z", "reorder_point": 10, "available": 20}]})

    warehouse: str
    sku: str
    on_hand: int
    reserved: int = 0
    version: int
    updated_at: str | None
    reorder_point: int | None = Field(None, description="Below it, `available` announces `stock.low`.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


ReservationStatus = Literal["active", "committed", "released", "expired"]


class ReservationOut(BaseModel):
    """A hold on a level's units: `quantity` reserved, `committed` issued from it; while `active`,
    the rest is held until `expires_at`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "reservation": "cart-7f3a", "warehouse": "SEL-1", "sku": "TEE-RED-M", "quantity": 1,
        "committed": 0, "status": "active", "expires_at": "2026-12-01T09:45:00.000Z"}]})

    reservation: str
    warehouse: str
    sku: str
    quantity: int
    committed: int
    status: ReservationStatus
    expires_at: str


class LedgerOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 1207, "warehouse": "SEL-1", "sku": "TEE-RED-M", "type": "issue", "delta": -2,
        "on_hand_after": 22, "reserved_delta": 0, "reserved_after": 1, "version": 3,
        "job_id": "0b6f3c9e-5d0a-4f57-9a43-2f1d8c7e6a10", "line": None, "reference": "ORDER-88121",
        "reason": None, "recorded_at": "2026-12-01T09:30:00.000Z"}]})

    id: int
    warehouse: str
    sku: str
    type: str
    delta: int
    on_hand_after: int
    reserved_delta: int = Field(0, description="the change of the level's reserved units (reserve, "
                                "release, commit, expire, or a count's release)")
    reserved_after: int = 0
    version: int
    job_id: str | None = Field(description="null for another key's job, unless the caller is an "
                               "admin key not limited to warehouses")
    line: int | None
    reference: str | None = Field(description="null for another key's job, as `job_id`")
    reason: str | None
    recorded_at: str


class Accepted(BaseModel):
    """The answer to an accepted command or batch: its job, to poll at `Location`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "job_id": "0b6f3c9e-5d0a-4f57-9a43-2f1d8c7e6a10", "kind": "command", "status": "queued",
        "submitted_at": "2026-12-01T09:30:00.000Z"}]})

    job_id: str
    kind: Literal["command", "batch"]
    status: str
    submitted_at: str


class JobOut(BaseModel):
    """A job: `GET /v1/jobs/{job_id}`, and the outcome of a POST that waited for it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "job_id": "0b6f3c9e-5d0a-4f57-9a43-2f1d8c7e6a10", "kind": "command", "status": "succeeded",
        "submitted_at": "2026-12-01T09:30:00.000Z", "started_at": "2026-12-01T09:30:00.004Z",
        "completed_at": "2026-12-01T09:30:00.011Z", "result": {"on_hand_after": 22, "version_after": 3}}]})

    job_id: str
    kind: Literal["command", "batch"]
    status: Literal["queued", "running", "succeeded", "failed", "partially_failed"]
    submitted_at: str
    started_at: str | None = None
    completed_at: str | None = None
    result: dict[str, Any] | None = Field(
        None, description="A command: `{on_hand_after, version_after}` (a transfer: `{from, to}` of "
        "those; a reservation command adds `reserved_after`, `available_after` and `reservation: "
        "{reservation, status, held}`; a count that released reservations adds `reserved_after`, "
        "`available_after` and `released_reservations`); a batch: `{total, succeeded, failed}`.")
    error: dict[str, Any] | None = Field(
        None, description="A problem: why a command failed, or a failed atomic batch's first bad line.")


class JobList(BaseModel):
    items: list[JobOut]


class FailedLine(BaseModel):
    """A batch line that failed: `GET /v1/jobs/{job_id}/lines`."""

    line: int
    status: Literal["failed"]
    error: dict[str, Any] | None = Field(description="A problem: why the line failed.")


class SucceededLine(BaseModel):
    """A batch line that succeeded, with the level after it, as a single command's result shows it."""

    line: int
    status: Literal["succeeded"]
    result: dict[str, Any] = Field(description="`{on_hand_after, version_after}` (and `reserved_after` "
                                   "for a reservation's line); a transfer: `{from, to}` of those.")


JobLineOut = Annotated[FailedLine | SucceededLine, Field(discriminator="status")]


def _to_shown_millisecond(value: datetime) -> datetime:
    """Naive UTC as the database holds it, cut to the millisecond the API shows times in, so a
    time copied from a response (`recorded_at`) names the same instant it was shown for."""
    try:
        value = parse_utc(value)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError("time is out of range") from None
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# RFC 3339 (the offset may be left out: UTC). Pydantic alone would also take `0.5` or `1700000000`
# as seconds since 1970, which no integrator means by a time.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?",
                      re.ASCII)


def _rfc3339(value: object) -> object:
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("must be an RFC 3339 time, e.g. 2026-11-23T10:00:00Z")
    return value


# A time in a query (as_of, since, until); out of range is a 422, not a 500.
QueryTime = Annotated[datetime, BeforeValidator(_rfc3339), AfterValidator(_to_shown_millisecond)]
