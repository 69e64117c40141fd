"""A migrated SQLite database of each test's own, for the in-process embedded-profile tests."""

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from cli.prestart import create_database_if_missing, upgrade
from shared.sqlite_engine import create_sqlite_engine


@pytest.fixture
def url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'data' / 'stock.db'}"
    create_database_if_missing(url)
    upgrade(url)
    return url


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = create_sqlite_engine(url, busy_timeout_seconds=5)
    yield engine
    engine.dispose()
