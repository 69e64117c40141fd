"""A real API process and two real worker processes, shared by the end-to-end tests."""

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from cli.prestart import create_database_if_missing, upgrade
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


class OwnDatabase:
    """A database of one test's own: for a test whose workers must see no other test's jobs (the
    workers of one database apply any job waiting in it, whichever queue its wake-up went to)."""

    def __init__(self, name: str) -> None:
        url = make_url(os.environ["DATABASE_URL"])
        self.url = url.set(database=f"{url.database}_{name}")
        self.address = self.url.render_as_string(hide_password=False)
        self._server = create_engine(url.set(database=""), isolation_level="AUTOCOMMIT")
        with self._server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{self.url.database}`"))
        create_database_if_missing(self.address)
        upgrade(self.address)
        self.engine = create_engine(self.url)
        self._sessions: list[Session] = []

    def session(self) -> Session:
        """A session on it, closed when the database is dropped (an open transaction would hold
        the DROP)."""
        self._sessions.append(Session(self.engine))
        return self._sessions[-1]

    def auth(self, scopes: frozenset[str] = frozenset({"read", "write", "catalog"})) -> dict[str, str]:
        with Session(self.engine) as session, session.begin():
            return {"Authorization": f"Bearer {create_key(session, name='own', scopes=scopes)}"}

    def drop(self) -> None:
        for session in self._sessions:
            session.close()
        self.engine.dispose()
        with self._server.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS `{self.url.database}`"))


@pytest.fixture
def own_database(request) -> Iterator[OwnDatabase]:
    database = OwnDatabase(uuid.uuid4().hex[:8])
    yield database
    database.drop()
