"""Which profile the run command starts, and the banner that says so.

    profile=$(python -m cli.profile)    # prints `server` or `embedded`; the banner goes to stderr

- PROFILE set (in the environment or .env): that profile.
- DATABASE_URL, REDIS_URL or BROKER_URL set: `server`, since they name the servers to use.
- Otherwise the default servers decide: `embedded` if neither MySQL (127.0.0.1:3306) nor Redis
  (127.0.0.1:6379) answers, so that a machine with only Python still runs the whole service;
  `server` if either answers (with a warning when the other does not).
"""

import socket
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from shared.settings import Settings

DEFAULT_SERVERS = {"MySQL/MariaDB": ("127.0.0.1", 3306), "Redis": ("127.0.0.1", 6379)}
SERVER_SETTINGS = ("database_url", "redis_url", "broker_url")
Probe = Callable[[str, int], bool]
WIDTH = 78


@dataclass(frozen=True)
class Choice:
    profile: str
    reason: str
    warning: str | None = None


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def choose(settings: Settings, probe: Probe = answers) -> Choice:
    given = settings.model_fields_set
    if "profile" in given:
        return Choice(settings.profile, f"PROFILE={settings.profile} is set")
    named = [name.upper() for name in SERVER_SETTINGS if name in given]
    if named:
        return Choice("server", f"{', '.join(named)} {'is' if len(named) == 1 else 'are'} set")
    up = {name: probe(host, port) for name, (host, port) in DEFAULT_SERVERS.items()}
    where = " or ".join(f"{host}:{port} ({name})" for name, (host, port) in DEFAULT_SERVERS.items())
    if not any(up.values()):
        return Choice("embedded", f"DATABASE_URL and REDIS_URL are not set and nothing answers on {where}")
    down = [name for name, ok in up.items() if not ok]
    warning = None
    if down:
        host, port = DEFAULT_SERVERS[down[0]]
        warning = (f"{down[0]} does not answer on {host}:{port}, and the server profile needs it: "
                   f"start it, or set PROFILE=embedded to try the service without MySQL and Redis")
    answering = " and ".join(name for name, ok in up.items() if ok)
    return Choice("server", f"{answering} {'answers' if down else 'answer'} on the default port"
                  f"{'' if down else 's'}", warning)


def _field(label: str, text: str) -> str:
    return textwrap.fill(text, width=WIDTH, initial_indent=f"  {label:<10}",
                         subsequent_indent=" " * 12, break_on_hyphens=False, break_long_words=False)


def banner(settings: Settings, choice: Choice) -> str:
    database = make_url(settings.database_url)
    if settings.profile == "server":
        lines = [f"profile: server ({choice.reason})",
                 _field("database", database.render_as_string(hide_password=True)),
                 _field("redis", make_url(settings.redis_url).render_as_string(hide_password=True))]
        if choice.warning:
            lines.append(_field("WARNING", choice.warning))
        return "\n".join(lines)
    rule = "=" * WIDTH
    return "\n".join([
        rule,
        "  EMBEDDED PROFILE: for trying the service on this machine, NOT for production",
        rule,
        _field("why", choice.reason),
        _field("database", f"SQLite {database.database}"),
        _field("queue", f"files in {settings.embedded_queue_dir}"),
        _field("limits", "one API and one worker process; writes take turns on one SQLite file; "
                         "no rate limit; job status and long polls read the database"),
        _field("tools", "in another shell, give the command-line tools the same profile:"),
        " " * 12 + "PROFILE=embedded .venv/bin/python -m cli.keys create --name me",
        _field("for real", "MySQL/MariaDB + Redis, the server profile (docs/operations.md, docker compose)"),
        rule,
    ])


def main() -> int:
    try:
        choice = choose(Settings())
        settings = Settings(profile=choice.profile)
    except ValidationError as exc:
        messages = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        print(f"configuration error: {messages}", file=sys.stderr)
        return 2
    print(banner(settings, choice), file=sys.stderr)
    print(choice.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
