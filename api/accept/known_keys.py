"""The API-key rows the job writer has found live, by prefix, so a busy key is not read per group.

A key's id, name, scopes and secret hash never change (`cli.keys` only creates and revokes), so
they can be kept. Whether the key is revoked cannot: the writer's INSERT writes a job only if its
key is not revoked at that moment (`shared/stock/upsert.py` `insert_jobs`), so a revocation still
counts from the next command. The secret is still checked against the kept hash on every request.
"""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection

from shared.api_keys import find_keys

MAX_KNOWN_KEYS = 10_000


class KnownKeys:
    """Used by the writer's thread only."""

    def __init__(self, max_keys: int = MAX_KNOWN_KEYS) -> None:
        self.max_keys = max_keys
        self._rows: dict[str, Any] = {}

    def rows(self, conn: Connection, prefixes: Iterable[str]) -> dict[str, Any]:
        """The rows of these prefixes that exist, reading only those not known yet; a revoked
        key's row is returned but not kept."""
        wanted = set(prefixes)
        missing = wanted - self._rows.keys()
        found = find_keys(conn, missing) if missing else {}
        for prefix, row in found.items():
            if row.revoked_at is None:
                self._keep(prefix, row)
        return {p: row for p in wanted if (row := self._rows.get(p) or found.get(p)) is not None}

    def forget(self, prefix: str) -> None:
        """Read this key again next time: it was refused (revoked, or a secret that did not match)."""
        self._rows.pop(prefix, None)

    def _keep(self, prefix: str, row: Any) -> None:
        if len(self._rows) >= self.max_keys:
            self._rows.pop(next(iter(self._rows)))  # the longest kept
        self._rows[prefix] = row
