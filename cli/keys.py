"""Manage API keys from the command line; a new key is printed once and never stored in clear.

    python -m cli.keys create --name partner-a --scopes read,write
    python -m cli.keys create --name partner-b --scopes read,write --warehouses SEL-1,BUS-2
    python -m cli.keys revoke <prefix>
    python -m cli.keys list
    python -m cli.keys ensure-admin      # create an admin key only if no active one exists
"""

import argparse
import sys

from sqlalchemy import select

from shared.api_keys import SCOPES, create_key, has_active_admin, parse_scopes, parse_warehouses, revoke_key
from shared.clock import rfc3339
from shared.db import session_scope
from shared.models import ApiKey


def _print_new_key(key: str, name: str, scopes: str, warehouses: str | None = None) -> None:
    limit = f", warehouses {warehouses}" if warehouses else ""
    print(f"API key for {name!r} (scopes {scopes}{limit}); it is shown once, keep it now:\n\n    {key}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.keys", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True)
    create.add_argument("--scopes", default="read,write", help=f"comma-separated: {', '.join(SCOPES)}")
    create.add_argument("--warehouses", help="comma-separated warehouse codes the key is limited to "
                        "(default: every warehouse)")
    revoke = commands.add_parser("revoke", help="revoke a key (effective at once)")
    revoke.add_argument("prefix", help="the part after sk_ and before the next _")
    commands.add_parser("list", help="list keys (never their secrets)")
    commands.add_parser("ensure-admin", help="create an admin key if none is active")
    args = parser.parse_args(argv)

    with session_scope() as session:
        if args.command == "create":
            try:
                scopes = parse_scopes(args.scopes)
                warehouses = parse_warehouses(args.warehouses) if args.warehouses is not None else None
            except ValueError as exc:
                parser.error(str(exc))
            key = create_key(session, name=args.name, scopes=scopes, warehouses=warehouses)
            _print_new_key(key, args.name, ",".join(sorted(scopes)),
                           ",".join(sorted(warehouses)) if warehouses is not None else None)
        elif args.command == "revoke":
            if not revoke_key(session, prefix=args.prefix):
                print(f"no active key with prefix {args.prefix!r}", file=sys.stderr)
                return 1
            print(f"revoked {args.prefix}")
        elif args.command == "list":
            for key in session.scalars(select(ApiKey).order_by(ApiKey.id)):
                state = f"revoked {rfc3339(key.revoked_at)}" if key.revoked_at else "active"
                limit = f"  warehouses {key.warehouses}" if key.warehouses is not None else ""
                print(f"{key.prefix}  {key.name:<24} {key.scopes:<34} {rfc3339(key.created_at)}  "
                      f"{state}{limit}")
        elif args.command == "ensure-admin" and not has_active_admin(session):
            _print_new_key(create_key(session, name="admin", scopes=frozenset({"admin"})), "admin", "admin")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
