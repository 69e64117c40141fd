"""Manage API keys from the command line; a new key is printed once and never stored in clear.

    python -m cli.keys create --name partner-a --scopes read,write
    python -m cli.keys revoke <prefix>
    python -m cli.keys list
    python -m cli.keys ensure-admin      # create an admin key only if no active one exists
"""

import argparse
import sys

from sqlalchemy import select

from shared.api_keys import create_key, has_active_admin, parse_scopes, revoke_key
from shared.clock import rfc3339
from shared.db import session_scope
from shared.models import ApiKey


def _print_new_key(key: str, name: str, scopes: str) -> None:
    print(f"API key for {name!r} (scopes {scopes}); it is shown once, keep it now:\n\n    {key}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.keys", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", default="read,write", help="comma-separated: read, write, admin")
    revoke = commands.add_parser("revoke", help="revoke a key (effective at once)")
    revoke.add_argument("prefix", help="the part after sk_ and before the next _")
    commands.add_parser("list", help="list keys (never their secrets)")
    commands.add_parser("ensure-admin", help="create an admin key if none is active")
    args = parser.parse_args(argv)

    with session_scope() as session:
        if args.command == "create":
            try:
                scopes = parse_scopes(args.scopes)
            except ValueError as exc:
                parser.error(str(exc))
            _print_new_key(create_key(session, name=args.name, scopes=scopes), args.name, args.scopes)
        elif args.command == "revoke":
            if not revoke_key(session, prefix=args.prefix):
                print(f"no active key with prefix {args.prefix!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.prefix}")
        elif args.command == "list":
            for key in session.scalars(select(ApiKey).order_by(ApiKey.id)):
                state = f"revoked {rfc3339(key.revoked_at)}" if key.revoked_at else "active"
                print(f"{key.prefix}  {key.name:<24} {key.scopes:<18} {rfc3339(key.created_at)}  {state}")
        elif args.command == "ensure-admin" and not has_active_admin(session):
            _print_new_key(create_key(session, name="admin", scopes=frozenset({"admin"})), "admin", "admin")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
