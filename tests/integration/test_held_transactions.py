"""A thread's kept connection used for transactions one after another (the drains' apply
transactions, shared/drain.py): each commits or rolls back as a whole, and the next one starts
clean on the same connection, or on a fresh one after a failure."""

import uuid

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from shared.held_connection import HeldConnection
from shared.models import Warehouse
from shared.settings import get_settings


@pytest.fixture
def warehouse():
    engine = create_engine(get_settings().database_url)
    code = f"HT-{uuid.uuid4().hex[:8]}"
    with Session(engine) as session:
        session.add(Warehouse(code=code, name="before"))
        session.commit()
    yield code, engine
    engine.dispose()


def _name(engine, code: str) -> str:
    with Session(engine) as session:
        return session.scalar(select(Warehouse.name).where(Warehouse.code == code))


def test_a_transaction_commits_when_its_block_ends_and_not_before(warehouse):
    code, engine = warehouse
    held = HeldConnection(autocommit=False)
    with held.transaction() as conn:
        conn.execute(update(Warehouse).where(Warehouse.code == code).values(name="during"))
        assert _name(engine, code) == "before"  # another connection does not see it yet
    assert _name(engine, code) == "during"
    held.discard()


def test_a_failed_transaction_leaves_nothing_and_the_next_one_works(warehouse):
    code, engine = warehouse
    held = HeldConnection(autocommit=False)
    with pytest.raises(RuntimeError), held.transaction() as conn:
        conn.execute(update(Warehouse).where(Warehouse.code == code).values(name="lost"))
        raise RuntimeError("the work failed")
    assert _name(engine, code) == "before"
    with held.transaction() as conn:
        conn.execute(update(Warehouse).where(Warehouse.code == code).values(name="after"))
    assert _name(engine, code) == "after"
    held.discard()


def test_transactions_one_after_another_share_the_connection():
    held = HeldConnection(autocommit=False)
    server_sessions = set()
    for _ in range(3):
        with held.transaction() as conn:
            server_sessions.add(conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar())
    assert len(server_sessions) == 1
    held.discard()


def test_an_autocommitting_connection_refuses_to_pretend_it_has_transactions():
    with pytest.raises(RuntimeError), HeldConnection().transaction():
        pass
