"""Wake-ups a finished drain has already answered are dropped (shared/drain.py): only a drain of
every slot counts, from when it began, less the clocks' allowed skew; a wake-up from an API that
sends no time is always drained."""

import time

import pytest

from shared import drain as drains


@pytest.fixture
def coverage(monkeypatch):  # type: ignore[no-untyped-def]
    fresh = drains._Coverage()
    monkeypatch.setattr(drains, "_coverage", fresh)
    monkeypatch.setattr(drains, "_waiting", lambda slots: [])  # nothing waiting anywhere
    return fresh


def test_a_wakeup_sent_before_a_finished_drain_of_every_slot_began_is_covered(coverage):
    sent_before = time.time() - drains.CLOCK_SKEW_SECONDS - 0.01
    assert not drains.wakeup_covered(sent_before)
    drains.drain()
    assert drains.wakeup_covered(sent_before)


def test_a_wakeup_sent_within_the_skew_allowance_or_after_is_drained(coverage):
    drains.drain()
    assert not drains.wakeup_covered(time.time())
    assert not drains.wakeup_covered(time.time() - drains.CLOCK_SKEW_SECONDS / 2)


def test_a_drain_of_some_slots_covers_nothing(coverage):
    sent_before = time.time() - drains.CLOCK_SKEW_SECONDS - 0.01
    drains.drain([1, 2])
    assert not drains.wakeup_covered(sent_before)


def test_a_wakeup_without_a_time_is_drained(coverage):
    drains.drain()
    assert not drains.wakeup_covered(None)


def test_a_drain_that_fails_covers_nothing(coverage, monkeypatch):
    def outage(slots):  # type: ignore[no-untyped-def]
        raise ConnectionError("database away")

    monkeypatch.setattr(drains, "_waiting", outage)
    sent_before = time.time() - drains.CLOCK_SKEW_SECONDS - 0.01
    with pytest.raises(ConnectionError):
        drains.drain()
    assert not drains.wakeup_covered(sent_before)
