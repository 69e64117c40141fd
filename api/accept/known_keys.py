"""The API-key rows this process has found live, by prefix, so a busy key is not read per request.

A key's id, name, scopes, warehouses and secret hash never change (`cli.keys` only creates and
revokes), so they can be kept. Whether the key is revoked cannot: the routes that trust a kept key
are those whose job INSERT writes a job only if its key is not revoked at that moment
(`shared/jobs/rows.py` `insert_jobs`), and every other route reads the row afresh
(api/access.py). The secret is still checked against the kept hash on every request.

Used on the event loop only (api/access.py), so it needs no lock.
"""

from functools import lru_cache
from typing import Any

MAX_KNOWN_KEYS = 10_000


class KnownKeys:
    def __init__(self, max_keys: int = MAX_KNOWN_KEYS) -> None:
        self.max_keys = max_keys
        self._rows: dict[str, Any] = {}

    def get(self, prefix: str) -> Any | None:
        return self._rows.get(prefix)

    def remember(self, prefix: str, row: Any | None) -> None:
        """Keep a live key's row; forget the prefix if there is none or the key is revoked."""
        if row is None or row.revoked_at is not None:
            self._rows.pop(prefix, None)
            return
        if prefix not in self._rows and len(self._rows) >= self.max_keys:
            self._rows.pop(next(iter(self._rows)))  # the longest kept
        self._rows[prefix] = row


@lru_cache
def known_keys() -> KnownKeys:
    """One per API process."""
    return KnownKeys()
