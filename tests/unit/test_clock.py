"""RFC 3339 as the API writes it: UTC, milliseconds (truncated, never rounded up), `Z`."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.clock import parse_utc, rfc3339

PLUS_2, MINUS_1 = timezone(timedelta(hours=2)), timezone(timedelta(hours=-1))


@pytest.mark.parametrize(("value", "text"), [
    (datetime(2026, 12, 2, 1, 2, 3), "2026-12-02T01:02:03.000Z"),
    (datetime(2026, 12, 2, 1, 2, 3, 999_999), "2026-12-02T01:02:03.999Z"),
    (datetime(2026, 12, 2, 1, 2, 3, 1_500), "2026-12-02T01:02:03.001Z"),
    (datetime(2026, 12, 2, 1, 2, 3, 7, tzinfo=UTC), "2026-12-02T01:02:03.000Z"),
    (datetime(2026, 12, 2, 1, 2, 3, 250_000, tzinfo=PLUS_2), "2026-12-01T23:02:03.250Z"),
    (datetime(2027, 1, 1, 0, 30, tzinfo=MINUS_1), "2027-01-01T01:30:00.000Z"),
])
def test_rfc3339_is_utc_to_the_millisecond(value: datetime, text: str) -> None:
    assert rfc3339(value) == text


def test_a_missing_time_stays_missing() -> None:
    assert rfc3339(None) is None


def test_parse_utc_gives_the_naive_utc_the_database_holds() -> None:
    aware = datetime(2026, 12, 2, 3, 0, tzinfo=timezone(timedelta(hours=3)))
    assert parse_utc(aware) == datetime(2026, 12, 2, 0, 0)
    assert parse_utc(datetime(2026, 12, 2, 0, 0)) == datetime(2026, 12, 2, 0, 0)
