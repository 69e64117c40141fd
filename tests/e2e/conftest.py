"""A real API process and two real worker processes, shared by the end-to-end tests."""

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.orm import Session

from shared.api_keys import create_key
from shared.db import get_session_factory, session_scope
from shared.stock.reconcile import find_mismatches
from tests.support.brokers import BROKERS, broker_env, delete_queues
from tests.support.processes import start_api, start_worker


@pytest.fixture(scope="session")
def api_url() -> Iterator[str]:
    api, base = start_api()
    yield base
    api.stop()


@pytest.fixture(scope="session")
def workers(api_url: str) -> Iterator[list]:
    # Both workers consume every shard queue, so they really do contend for the same rows.
    started = [start_worker("e2e-a"), start_worker("e2e-b")]
    yield started
    for w in started:
        w.stop()


def make_key(scopes: set[str], name: str = "test") -> str:
    with session_scope() as session:
        return create_key(session, name=name, scopes=frozenset(scopes))


@pytest.fixture(scope="session")
def auth() -> dict[str, str]:
    """Headers of a read, write and catalog key: what an integration's key had before the catalog
    scope, and has since the migration that added it."""
    return {"Authorization": f"Bearer {make_key({'read', 'write', 'catalog'}, 'integration')}"}


@pytest.fixture
def client(api_url: str, workers: list, auth: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=30, headers=auth) as c:
        yield c


@pytest.fixture
def db() -> Iterator[Session]:
    session = get_session_factory()()
    yield session
    session.close()


def assert_books_balance(session: Session) -> None:
    session.rollback()  # a fresh snapshot
    assert find_mismatches(session) == []


@pytest.fixture(params=BROKERS)
def broker(request) -> Iterator[tuple[str, dict[str, str], list[str]]]:
    """Each broker in turn, for the tests that own their API and workers: (its name, the settings
    that select it, a list to put the test's queue names in, deleted afterwards)."""
    queues: list[str] = []
    yield request.param, broker_env(request.param), queues
    delete_queues(request.param, queues)
