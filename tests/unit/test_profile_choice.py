"""How the run command picks its profile (cli/profile.py), without touching the real servers."""

import socket

import pytest

from cli import profile
from cli.profile import Choice, answers, banner, choose
from shared.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    # conftest points DATABASE_URL and REDIS_URL at the test servers; a newcomer has neither.
    for name in ("DATABASE_URL", "REDIS_URL", "BROKER_URL", "PROFILE", "EMBEDDED_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def probe_answering(*up: int):
    """A probe that finds something listening on the given ports only."""
    asked = []

    def probe(host: str, port: int) -> bool:
        asked.append((host, port))
        return port in up

    probe.asked = asked
    return probe


def test_nothing_set_and_nothing_answering_means_embedded():
    probe = probe_answering()
    choice = choose(settings(), probe)
    assert choice.profile == "embedded" and choice.warning is None
    assert "not set" in choice.reason and "127.0.0.1:3306" in choice.reason
    assert sorted(probe.asked) == [("127.0.0.1", 3306), ("127.0.0.1", 6379)]


def test_mysql_and_redis_answering_means_server():
    choice = choose(settings(), probe_answering(3306, 6379))
    assert choice == Choice("server", "MySQL/MariaDB and Redis answer on the default ports")


@pytest.mark.parametrize("up, missing", [(3306, "Redis"), (6379, "MySQL/MariaDB")])
def test_half_a_server_stack_means_server_with_a_warning_naming_the_missing_one(up, missing):
    choice = choose(settings(), probe_answering(up))
    assert choice.profile == "server"
    assert choice.warning.startswith(missing) and "PROFILE=embedded" in choice.warning


@pytest.mark.parametrize("name", ["DATABASE_URL", "REDIS_URL", "BROKER_URL"])
def test_a_named_server_means_server_without_probing(monkeypatch, name):
    monkeypatch.setenv(name, "mysql+pymysql://db.internal/stock" if name == "DATABASE_URL"
                       else "redis://cache.internal:6379/0")
    probe = probe_answering()
    choice = choose(settings(), probe)
    assert choice.profile == "server" and name in choice.reason
    assert probe.asked == []


def test_a_named_server_in_the_dotenv_file_counts_too(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("API_KEY_PEPPER=x\nREDIS_URL=redis://cache.internal:6379/0\n")
    choice = choose(Settings(_env_file=env_file), probe_answering())
    assert choice.profile == "server" and "REDIS_URL" in choice.reason


@pytest.mark.parametrize("wanted", ["embedded", "server"])
def test_an_explicit_profile_wins(monkeypatch, wanted):
    monkeypatch.setenv("PROFILE", wanted)
    probe = probe_answering(3306, 6379) if wanted == "embedded" else probe_answering()
    choice = choose(settings(), probe)
    assert choice == Choice(wanted, f"PROFILE={wanted} is set")
    assert probe.asked == []


def test_the_probe_sees_a_listener_and_a_closed_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert answers("127.0.0.1", port)
    assert not answers("127.0.0.1", port)


def test_the_embedded_banner_says_it_is_not_for_production_and_where_the_data_is(tmp_path):
    choice = choose(settings(), probe_answering())
    text = banner(settings(profile="embedded", embedded_data_dir=tmp_path), choice)
    assert "EMBEDDED PROFILE" in text and "NOT for production" in text
    assert str(tmp_path / "stock.db") in text and str(tmp_path / "queue") in text
    assert "PROFILE=embedded .venv/bin/python -m cli.keys" in text


def test_the_server_banner_hides_passwords_and_carries_the_warning():
    choice = Choice("server", "DATABASE_URL is set", warning="Redis does not answer")
    text = banner(settings(database_url="mysql+pymysql://app:s3cret@db/stock"), choice)
    assert text.startswith("profile: server (DATABASE_URL is set)")
    assert "s3cret" not in text and "app:***@db" in text
    assert "WARNING   Redis does not answer" in text


def test_main_prints_the_profile_for_the_shell_and_the_banner_apart(monkeypatch, capsys):
    monkeypatch.setenv("PROFILE", "embedded")
    assert profile.main() == 0
    out, err = capsys.readouterr()
    assert out == "embedded\n" and "EMBEDDED PROFILE" in err


def test_main_refuses_an_embedded_profile_pointed_at_mysql(monkeypatch, capsys):
    monkeypatch.setenv("PROFILE", "embedded")
    monkeypatch.setenv("DATABASE_URL", "mysql+pymysql://root:@127.0.0.1:3306/stock")
    assert profile.main() == 2
    out, err = capsys.readouterr()
    assert out == "" and "runs on SQLite" in err
