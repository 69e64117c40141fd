"""Time formatting for the API: RFC 3339, UTC, milliseconds, `Z`."""

from datetime import UTC, datetime
from typing import overload


# A time gives text; only a missing time (a nullable column) gives None.
@overload
def rfc3339(value: datetime) -> str: ...
@overload
def rfc3339(value: None) -> None: ...
@overload
def rfc3339(value: datetime | None) -> str | None: ...
def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    # isoformat truncates to the millisecond, as the // 1000 of a formatted time would; it is C,
    # where strftime plus a format was a worker's biggest cost in publishing outcomes.
    return value.isoformat(timespec="milliseconds") + "Z"


def parse_utc(value: datetime) -> datetime:
    """An aware or naive (taken as UTC) time as the naive UTC the database holds."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None)
