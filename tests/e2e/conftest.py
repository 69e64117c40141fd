"""A real API process and two real worker processes, shared by the end-to-end tests."""

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.orm import Session

from shared.db import get_session_factory
from shared.stock.reconcile import find_mismatches
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


@pytest.fixture
def client(api_url: str, workers: list) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=30) as c:
        yield c


@pytest.fixture
def db() -> Iterator[Session]:
    session = get_session_factory()()
    yield session
    session.close()


def assert_books_balance(session: Session) -> None:
    session.rollback()  # a fresh snapshot
    assert find_mismatches(session) == []
