"""API keys: generated once, stored only as a keyed hash (HMAC-SHA256 with a server-side pepper),
compared in constant time. A key reads `sk_<prefix>_<secret>`; the prefix finds the row."""

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, update
from sqlalchemy.orm import Session

from shared.db import rows_matched
from shared.models import ApiKey, utcnow
from shared.settings import get_settings

# read: every GET; write: stock commands and batches; catalog: warehouse and product writes;
# webhooks: subscriptions; admin: everything, and every key's jobs.
SCOPES = ("read", "write", "catalog", "webhooks", "admin")
WAREHOUSE_CODE = re.compile(r"[A-Za-z0-9._-]{1,32}")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and scopes, and the warehouses it is limited to (None: every
    warehouse; shared/warehouse_limit.py says what a limit allows). `admin` may do everything."""

    key_id: int
    name: str
    scopes: frozenset[str]
    prefix: str = ""
    warehouses: frozenset[str] | None = None

    def can(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes


def _pepper() -> bytes:
    pepper = get_settings().api_key_pepper
    if pepper is None or not pepper.get_secret_value():
        raise RuntimeError("API_KEY_PEPPER is not set; bin/run writes one to .env on first start")
    return pepper.get_secret_value().encode()


def hash_secret(secret: str) -> str:
    return hmac.new(_pepper(), secret.encode(), hashlib.sha256).hexdigest()


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = scopes - set(SCOPES)
    if not scopes or unknown:
        raise ValueError(f"scopes must be a comma-separated subset of {', '.join(SCOPES)}")
    return scopes


def parse_warehouses(text: str) -> frozenset[str]:
    """A comma-separated list of warehouse codes, for a key limited to them."""
    codes = frozenset(code.strip() for code in text.split(",") if code.strip())
    bad = sorted(code for code in codes if not WAREHOUSE_CODE.fullmatch(code))
    if not codes or bad:
        raise ValueError("warehouses must be a comma-separated list of warehouse codes "
                         f"(1-32 of A-Z a-z 0-9 - _ .){': not ' + ', '.join(bad) if bad else ''}")
    return codes


def create_key(session: Session, *, name: str, scopes: frozenset[str],
               warehouses: frozenset[str] | None = None) -> str:
    """Store a new key and return it in full: the only time it is ever seen. A key's scopes and
    warehouses never change afterwards (the API keeps them, api/accept/known_keys.py): to change them,
    make a new key and revoke the old one."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    session.add(ApiKey(name=name, prefix=prefix, secret_hash=hash_secret(secret),
                       scopes=",".join(sorted(scopes)), created_at=utcnow(),
                       warehouses=",".join(sorted(warehouses)) if warehouses is not None else None))
    session.flush()
    return f"sk_{prefix}_{secret}"


def revoke_key(session: Session, *, prefix: str) -> bool:
    result = session.execute(update(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
                             .values(revoked_at=utcnow()))
    return rows_matched(result) == 1


def has_active_admin(session: Session) -> bool:
    """Whether an active admin key exists that is not limited to warehouses."""
    keys = session.execute(select(ApiKey.scopes).where(ApiKey.revoked_at.is_(None),
                                                       ApiKey.warehouses.is_(None)))
    return any("admin" in scopes.split(",") for (scopes,) in keys)


def parse_token(token: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed `sk_<prefix>_<secret>`, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "sk" or not parts[1] or not parts[2] or len(token) > 200:
        return None
    return parts[1], parts[2]


# Built once: the statement is the same for every group, only the list of prefixes changes.
_KEYS_BY_PREFIX = (select(ApiKey.id, ApiKey.prefix, ApiKey.name, ApiKey.scopes, ApiKey.secret_hash,
                          ApiKey.warehouses, ApiKey.revoked_at)
                   .where(ApiKey.prefix.in_(bindparam("prefixes", expanding=True))))


def find_keys(db: Connection | Session, prefixes: Iterable[str]) -> dict[str, Any]:
    """The key rows with these prefixes, by prefix: columns over a plain connection, not ORM
    objects, because every request reads its key."""
    rows = db.execute(_KEYS_BY_PREFIX, {"prefixes": list(set(prefixes))}).all()
    return {row.prefix: row for row in rows}


def check(key: Any | None, secret: str) -> Principal | None:
    """The principal if `secret` matches the key row and it is not revoked."""
    expected = key.secret_hash if key else hash_secret("not-a-key")  # same work either way
    if not hmac.compare_digest(expected, hash_secret(secret)) or key is None or key.revoked_at:
        return None
    warehouses = frozenset(key.warehouses.split(",")) if key.warehouses is not None else None
    return Principal(key.id, key.name, frozenset(key.scopes.split(",")), key.prefix, warehouses)
