"""Which ordering slots a drain's transaction takes (shared/drain.py), on real MariaDB row locks:
the slots of the oldest jobs, each slot's jobs before the next slot's, until a transaction is full;
a slot another worker holds is skipped and the next one taken, so while one worker applies a
warehouse's bulk upload another applies the next warehouse's."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from shared import drain as drains
from shared.held_connection import HeldConnection
from shared.jobs.rows import insert_jobs, new_row
from shared.models import Job, Product, Warehouse, utcnow
from shared.ordering import shard_for_slot, slot_for
from shared.settings import get_settings


def _codes_in_distinct_slots(count: int) -> list[str]:
    """Fresh warehouse codes whose slots differ from each other."""
    codes: dict[int, str] = {}
    while len(codes) < count:
        code = f"DS-{uuid.uuid4().hex[:8]}"
        codes.setdefault(slot_for(code), code)
    return list(codes.values())


@pytest.fixture
def catalog():
    """Two warehouses in two slots and one product; yields (codes, sku, engine)."""
    engine = create_engine(get_settings().database_url)
    codes, sku = _codes_in_distinct_slots(2), f"DS-{uuid.uuid4().hex[:8]}"
    with Session(engine) as session:
        session.add_all([Warehouse(code=code, name=code) for code in codes])
        session.add(Product(sku=sku, name=sku))
        session.commit()
    yield codes, sku, engine
    engine.dispose()


def _accept(jobs: list[tuple[str, str, int]]) -> list[str]:
    """Queue receive commands, given as (warehouse, sku, line count to declare), one millisecond
    apart in this order; returns their ids."""
    start = utcnow()
    rows = [new_row(job_id=str(uuid.uuid4()), kind="command", mode=None,
                    payload={"type": "receive", "warehouse": code, "sku": sku, "quantity": 1},
                    slot=slot_for(code), line_count=lines, api_key_id=None, idempotency_key=None,
                    request_hash=None, request_id=None, submitted_at=start + timedelta(milliseconds=n))
            for n, (code, sku, lines) in enumerate(jobs)]
    held = HeldConnection()
    with held.use() as conn:
        insert_jobs(conn, rows)
    held.discard()
    return [row["id"] for row in rows]


def _statuses(engine, job_ids: list[str]) -> list[str]:
    with Session(engine) as session:
        rows = session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids)))
        status = {job_id: value for job_id, value in rows}
    return [status[job_id] for job_id in job_ids]


def _take_next(engine, slots: list[int], max_jobs: int, max_lines: int):
    """What a drain's next transaction would hold, skip and apply, its locks let go at once."""
    with engine.connect() as conn, conn.begin():
        return drains._take_next(conn, slots, max_jobs, max_lines)


def test_small_jobs_of_several_slots_go_in_one_transaction_in_accepted_order(catalog):
    (first, second), sku, engine = catalog
    jobs = _accept([(second, sku, 1), (first, sku, 1), (second, sku, 1)])
    slots = [slot_for(first), slot_for(second)]
    assert _take_next(engine, slots, 200, 100) == (sorted(slots), [], jobs, [])
    # Room for one job: the oldest, in its slot alone; the other slot's jobs are left to others.
    assert _take_next(engine, slots, 1, 100) == ([slot_for(second)], [], jobs[:1], [slot_for(first)])


def test_a_slot_emptied_since_the_drain_looked_is_not_left_to_anyone(catalog):
    (first, second), sku, engine = catalog
    jobs = _accept([(first, sku, 1)])
    # The drain saw both slots waiting; another worker has applied the second's jobs since.
    assert _take_next(engine, [slot_for(first), slot_for(second)], 200, 100) == (
        [slot_for(first)], [], jobs, [])


def test_a_slot_whose_jobs_fill_a_transaction_goes_alone(catalog):
    (first, second), sku, engine = catalog
    jobs = _accept([(first, sku, 5_000), (second, sku, 5_000), (first, sku, 5_000)])
    slots = [slot_for(first), slot_for(second)]
    left = [slot_for(second)]
    assert _take_next(engine, slots, 200, 10_000) == ([slot_for(first)], [], [jobs[0], jobs[2]], left)
    # One job alone over the bound is still taken, or it would never be applied.
    assert _take_next(engine, slots, 200, 10) == ([slot_for(first)], [], jobs[:1], left)
    # Room for both slots' jobs: both, in accepted order.
    assert _take_next(engine, slots, 200, 15_000) == (sorted(slots), [], jobs, [])


def test_while_one_worker_applies_a_slot_another_drains_the_next_and_leaves_the_held_one(catalog):
    (first, second), sku, engine = catalog
    first_jobs = _accept([(first, sku, 20_000), (first, sku, 20_000)])
    second_jobs = _accept([(second, sku, 20_000)])
    slots = [slot_for(first), slot_for(second)]
    with engine.connect() as other_worker:
        other_worker.begin()
        take = drains._take_next(other_worker, slots, 200, 20_000)
        # The oldest job's slot alone, the other left to the others.
        assert take == ([slot_for(first)], [], first_jobs[:1], [slot_for(second)])

        outcomes = drains.drain(slots)

        assert {o.job_id for o in outcomes} & set(first_jobs) == set()
        assert _statuses(engine, second_jobs) == ["succeeded"]
        assert _statuses(engine, first_jobs) == ["queued", "queued"]
        other_worker.rollback()  # the other worker goes away: its lock goes with it
    drains.drain(slots)
    assert _statuses(engine, first_jobs) == ["succeeded", "succeeded"]


def test_a_drain_that_finds_every_slot_held_applies_nothing_and_says_so(catalog):
    (first, second), sku, engine = catalog
    jobs = _accept([(first, sku, 1), (second, sku, 1)])
    slots = [slot_for(first), slot_for(second)]
    with engine.connect() as other_worker:
        other_worker.begin()
        assert drains._take_next(other_worker, slots, 200, 100) == (sorted(slots), [], jobs, [])
        assert drains.drain(slots) == []
        assert _statuses(engine, jobs) == ["queued", "queued"]
        other_worker.rollback()
    drains.drain(slots)
    assert _statuses(engine, jobs) == ["succeeded", "succeeded"]


def test_a_drain_that_leaves_a_slot_wakes_the_other_workers_for_it_once(catalog, monkeypatch):
    (first, second), sku, engine = catalog
    jobs = _accept([(first, sku, 20_000), (second, sku, 20_000), (first, sku, 20_000),
                    (second, sku, 20_000)])
    sent: list[dict[int, list[int]]] = []
    monkeypatch.setattr(drains, "send_wakeups", sent.append)
    monkeypatch.setattr(drains, "_hand_off", drains._HandOff())

    drains.drain([slot_for(first), slot_for(second)])

    drains._hand_off._pool.shutdown(wait=True)
    shard = shard_for_slot(slot_for(second), get_settings().shard_count)
    # The first transaction took the oldest job's slot and left the other; alone here, this drain
    # then applied that one too, and woke nobody again.
    assert sent == [{shard: [slot_for(second)]}]
    assert _statuses(engine, jobs) == ["succeeded"] * 4
