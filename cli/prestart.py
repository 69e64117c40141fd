"""Pre-start step: create the database if it is missing, then run the migrations to head.

`python -m cli.prestart` (the run command, the docker `migrate` service and the tests use it).
"""

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from shared.settings import get_settings

# Beside cli/: the repository's root in a checkout or an image, site-packages when installed.
MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


def create_database_if_missing(url: str, wait_seconds: float = 60.0) -> None:
    """Connect to the server (not the database) and create the database, waiting for the server.
    SQLite creates its file on first connect; only the folder it goes in has to exist."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        return
    if not parsed.drivername.startswith(("mysql", "mariadb")):
        return
    server = create_engine(parsed.set(database=""), isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            with server.connect() as conn:
                conn.execute(text(f"CREATE DATABASE IF NOT EXISTS `{parsed.database}` "
                                  "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
            break
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            print("database server not reachable yet, waiting", flush=True)
            time.sleep(1)
    server.dispose()


def upgrade(url: str) -> None:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.attributes["database_url"] = url
    command.upgrade(config, "head")


def main() -> None:
    url = get_settings().database_url
    create_database_if_missing(url)
    upgrade(url)
    print(f"database ready: {make_url(url).render_as_string(hide_password=True)}", flush=True)


if __name__ == "__main__":
    main()
