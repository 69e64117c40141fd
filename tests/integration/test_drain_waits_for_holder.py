"""A wake-up's drain that finds its slot held by another worker waits for that holder's commit, then
applies what waits, on real MariaDB row locks (shared/drain.py); the sweep's drain does not wait;
and a holder that never commits is waited for no longer than the lock wait timeout."""

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, create_engine, select, text

from shared.drain import drain
from shared.held_connection import HeldConnection
from shared.jobs.outcome import JobOutcome
from shared.jobs.rows import insert_jobs, new_row
from shared.models import Job, utcnow
from shared.settings import get_settings

# Slots of their own: the job's warehouse is made up, so nothing else routes there.
SLOT = 1009


@pytest.fixture
def engine():  # type: ignore[no-untyped-def]
    engine = create_engine(get_settings().database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def job_id(engine) -> str:  # type: ignore[no-untyped-def]
    """A queued job in SLOT (its warehouse does not exist: it is applied as failed, which is an
    outcome like any other)."""
    row = new_row(job_id=str(uuid.uuid4()), kind="command", mode=None,
                  payload={"type": "receive", "warehouse": "NO-SUCH-WH", "sku": "NO-SUCH-SKU",
                           "quantity": 1},
                  slot=SLOT, line_count=1, api_key_id=None, idempotency_key=None, request_hash=None,
                  request_id=None, submitted_at=utcnow())
    held = HeldConnection()
    with held.use() as conn:
        insert_jobs(conn, [row])
    held.discard()
    return str(row["id"])


@pytest.fixture
def holder(engine) -> Iterator[Connection]:  # type: ignore[no-untyped-def]
    """Another worker's transaction holding SLOT's lock until the test commits it."""
    with engine.connect() as conn:
        conn.execute(text("SELECT slot FROM apply_slot WHERE slot = :slot FOR UPDATE"), {"slot": SLOT})
        yield conn
        conn.rollback()


def _status(engine, job_id: str) -> str:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return str(conn.scalar(select(Job.status).where(Job.id == job_id)))


def _drain_in_thread(**options: bool) -> tuple[threading.Thread, list[list[JobOutcome]]]:
    results: list[list[JobOutcome]] = []
    thread = threading.Thread(target=lambda: results.append(drain([SLOT], **options)), daemon=True)
    thread.start()
    return thread, results


def test_a_wakeup_waits_for_the_holders_commit_then_applies_what_waits(engine, job_id, holder):
    thread, results = _drain_in_thread(wait_for_holder=True)
    thread.join(1.0)
    assert thread.is_alive(), "the drain should wait while another transaction holds the slot"
    assert _status(engine, job_id) == "queued"

    holder.commit()
    thread.join(10)
    assert not thread.is_alive()
    assert [o.job_id for o in results[0]] == [job_id]
    assert _status(engine, job_id) == "failed"  # applied: its made-up warehouse is the failure


def test_the_sweep_does_not_wait_for_a_holder(engine, job_id, holder):
    started = time.monotonic()
    assert drain([SLOT]) == []
    assert time.monotonic() - started < 1.0
    assert _status(engine, job_id) == "queued"  # the holder's to apply


def test_a_holder_that_never_commits_is_waited_for_only_until_the_lock_wait_timeout(engine, job_id, holder):
    timeout = get_settings().lock_wait_timeout_seconds
    started = time.monotonic()
    thread, results = _drain_in_thread(wait_for_holder=True)
    thread.join(timeout + 10)
    assert not thread.is_alive()
    assert timeout - 0.5 <= time.monotonic() - started < timeout + 10
    assert results == [[]]
    assert _status(engine, job_id) == "queued"
