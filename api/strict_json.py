"""Request bodies as JSON objects whose every key appears once.

JSON parsers keep the last of two equal keys, so `{"quantity": 1, "quantity": 100}` was applied as
100 while a log or a proxy that read the first saw 1. Such a body is refused (400) by both
entrances: the fast path hands it to the route, whose request parses with `loads` (api/auth.py).
"""

import json
from typing import Any

from starlette.exceptions import HTTPException


class DuplicateKey(HTTPException):
    """An HTTPException because FastAPI's body reader passes those on (any other error becomes a
    bare 400); the app's handler answers it as `/problems/malformed-json`."""

    def __init__(self, key: str) -> None:
        super().__init__(400, f"The body is not valid: the key {key[:64]!r} appears twice in one object.")


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return found


def loads(body: bytes | str) -> Any:
    """json.loads, refusing an object with a key twice (DuplicateKey)."""
    return json.loads(body, object_pairs_hook=_unique)
