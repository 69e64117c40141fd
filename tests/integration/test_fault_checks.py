"""The fault campaign's checks (bench/faults/checks.py) see each kind of broken books they look for:
a campaign that reports zeros must be one whose queries could have found something. Run against a
database of their own, seeded as the campaign seeds it, then damaged one way at a time."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from bench.faults import checks
from bench.faults.traffic import Tally
from bench.load import seed
from cli.prestart import create_database_if_missing, upgrade
from tests.conftest import DATABASE_URL

BOUND = 60.0
URL = make_url(DATABASE_URL).set(database=f"{make_url(DATABASE_URL).database}_checks")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    url = URL.render_as_string(hide_password=False)
    create_database_if_missing(url)
    upgrade(url)
    seed(url, warehouses=2, skus=3, stock=10)
    engine = create_engine(url)
    yield engine
    engine.dispose()
    with create_engine(URL.set(database=""), isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{URL.database}`"))


def _run(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def test_seeded_books_pass(engine):
    assert checks.broken_invariants(engine, BOUND) == {}


@pytest.mark.parametrize(("damage", "repair", "invariant"), [
    ("UPDATE stock_level SET on_hand = on_hand + 1 WHERE id = 1",
     "UPDATE stock_level SET on_hand = on_hand - 1 WHERE id = 1", "on_hand = sum of ledger deltas"),
    ("UPDATE ledger_entry SET version = 3 WHERE stock_level_id = 1",
     "UPDATE ledger_entry SET version = 1 WHERE stock_level_id = 1", "versions 1..n without gaps"),
    ("UPDATE ledger_entry SET on_hand_after = on_hand_after + 1 WHERE stock_level_id = 1",
     "UPDATE ledger_entry SET on_hand_after = on_hand_after - 1 WHERE stock_level_id = 1",
     "on_hand_after chains"),
])
def test_each_breach_is_named(engine, damage, repair, invariant):
    _run(engine, damage)
    try:
        assert invariant in checks.broken_invariants(engine, BOUND)
    finally:
        _run(engine, repair)
    assert checks.broken_invariants(engine, BOUND) == {}


def test_a_move_recorded_twice_is_a_job_applied_twice(engine):
    _run(engine,
         "INSERT INTO ledger_entry (stock_level_id, type, delta, on_hand_after, version, job_id, line, "
         "recorded_at) SELECT stock_level_id, type, delta, on_hand_after + delta, version + 1, job_id, line, "
         "recorded_at FROM ledger_entry WHERE stock_level_id = 2",
         "UPDATE stock_level SET on_hand = on_hand * 2, version = 2 WHERE id = 2")
    try:
        broken = checks.broken_invariants(engine, BOUND)
        assert set(broken) == {"no job applied twice", "reconcile (shared.stock.reconcile)"}
    finally:
        _run(engine, "DELETE FROM ledger_entry WHERE stock_level_id = 2 AND version = 2",
             "UPDATE stock_level SET on_hand = on_hand / 2, version = 1 WHERE id = 2")


def test_a_202_without_a_row_is_lost_and_two_answers_for_one_key_are_a_duplicate(engine):
    tally = Tally()
    tally.accepted.update({"opening": 0.0, "never-written": 0.0})
    tally.answers["some-key"] = {"job-a", "job-b"}
    fates = checks.account(engine, tally)
    assert (fates["lost"], fates["applied"], fates["stuck"]) == (["never-written"], 1, [])
    assert len(checks.idempotency_breaches(engine, tally)) == 2  # two ids; neither is the key's job


def test_a_job_left_unfinished_past_the_bound_is_named_even_if_no_client_heard_of_it(engine):
    _run(engine, "INSERT INTO job (id, kind, status, payload, slot, attempts, submitted_at) VALUES "
                 "('forgotten', 'command', 'queued', '{}', 0, 0, UTC_TIMESTAMP(6) - INTERVAL 2 MINUTE), "
                 "('recent', 'command', 'queued', '{}', 0, 0, UTC_TIMESTAMP(6))")
    try:
        broken = checks.broken_invariants(engine, BOUND)
        assert list(broken) == ["no job unfinished past the recovery bound"]
        assert "forgotten" in broken["no job unfinished past the recovery bound"][1]
        assert broken["no job unfinished past the recovery bound"][0] == "1 rows"
    finally:
        _run(engine, "DELETE FROM job WHERE id IN ('forgotten', 'recent')")
