"""API-key rows for concurrent requests, one query per group (`api/accept/grouped.py`).

Used by the authorization decision (api/access.py) for keys it does not know yet, and for every
request of a route that must see a revocation at once: the requests that arrive together share one
IN query on one pooled connection, instead of a thread hop, a connection checkout and three round
trips each.
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from api.accept.grouped import GroupThread, Waiting
from shared.api_keys import find_keys


@dataclass(eq=False)
class KeyRequest(Waiting):
    prefix: str


class KeyLookup(GroupThread):
    async def find(self, prefix: str) -> Any | None:
        """The key row with this prefix, or None."""
        return await self.wait_for(KeyRequest(prefix))

    def may_serve_again(self) -> bool:
        return True  # it only reads

    def serve(self, group: list[KeyRequest]) -> None:
        with self.connection.use() as conn:
            rows = find_keys(conn, (request.prefix for request in group))
        for request in group:
            request.settle(rows.get(request.prefix))


@lru_cache
def get_key_lookup() -> KeyLookup:
    """One per API process, started on first use (after uvicorn has forked its workers)."""
    return KeyLookup("key-lookup")
