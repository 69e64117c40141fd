"""Test set-up: a dedicated database and Redis db on the real servers, fresh for each run.

The environment is set before any project module reads its settings, so in-process code and the
API and worker processes the tests start all use the test database. A missing service stops the
run with an error: these tests never pass by skipping what they claim to test.
"""

import os

# Names of this run's own, so runs side by side (a developer's and CI's) never share state.
RUN = f"t{os.getpid()}"
os.environ.setdefault("DATABASE_URL", f"mysql+pymysql://root:@127.0.0.1:3306/stock_test_{RUN}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("QUEUE_PREFIX", f"stock-{RUN}")
os.environ.setdefault("SHARD_COUNT", "2")
os.environ.setdefault("API_KEY_PEPPER", f"test-pepper-{RUN}")

import pytest  # noqa: E402
import redis  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from cli.prestart import create_database_if_missing, upgrade  # noqa: E402

DATABASE_URL = os.environ["DATABASE_URL"]
REDIS_URL = os.environ["REDIS_URL"]


def _require_services() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.exit(f"Redis is not reachable at {REDIS_URL}: {exc}", returncode=3)
    server = make_url(DATABASE_URL).set(database="")
    try:
        with create_engine(server).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001
        pytest.exit(f"MySQL/MariaDB is not reachable at {server}: {exc}", returncode=3)


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("STOCK_TESTS_NO_SERVICES"):
        return
    _require_services()
    url = make_url(DATABASE_URL)
    with create_engine(url.set(database=""), isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
    create_database_if_missing(DATABASE_URL)
    upgrade(DATABASE_URL)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("STOCK_TESTS_NO_SERVICES") or os.environ.get("STOCK_TESTS_KEEP_DB"):
        return
    url = make_url(DATABASE_URL)
    with create_engine(url.set(database=""), isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{os.environ['QUEUE_PREFIX']}*"):
        client.delete(key)
