"""The two profiles' settings: the server profile is as it always was; the embedded one brings its
own SQLite database and folder queue, and refuses settings that would need MySQL or Redis."""

import pytest
from pydantic import ValidationError

from shared.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    # conftest points DATABASE_URL and REDIS_URL at the test servers; these tests choose their own.
    for name in ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "PROFILE", "EMBEDDED_DATA_DIR",
                 "RATE_LIMIT_PER_SECOND"):
        monkeypatch.delenv(name, raising=False)


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_the_server_profile_is_the_default_and_unchanged():
    s = settings()
    assert s.profile == "server" and s.uses_redis
    assert s.database_url == "mysql+pymysql://root:@127.0.0.1:3306/stock"
    assert s.celery_broker_url == "redis://127.0.0.1:6379/0"
    assert s.rate_limit_per_second == 500


def test_the_embedded_profile_keeps_its_database_and_queue_in_its_data_dir(tmp_path):
    s = settings(profile="embedded", embedded_data_dir=tmp_path)
    assert not s.uses_redis
    assert s.database_url == f"sqlite:///{tmp_path / 'stock.db'}"
    assert s.celery_broker_url == "filesystem://localhost/"
    assert s.embedded_queue_dir == tmp_path / "queue"
    assert s.rate_limit_per_second == 0


def test_the_embedded_profile_is_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PROFILE", "embedded")
    monkeypatch.setenv("EMBEDDED_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/other.db")
    s = settings()
    assert s.profile == "embedded" and s.database_url == f"sqlite:///{tmp_path}/other.db"


@pytest.mark.parametrize("values", [
    {"database_url": "mysql+pymysql://root:@127.0.0.1:3306/stock"},
    {"broker_url": "redis://127.0.0.1:6379/0"},
    {"rate_limit_per_second": 10},
])
def test_the_embedded_profile_refuses_what_needs_mysql_or_redis(values):
    with pytest.raises(ValidationError, match="embedded profile|needs Redis"):
        settings(profile="embedded", **values)


def test_an_unknown_profile_is_refused():
    with pytest.raises(ValidationError):
        settings(profile="lite")
