"""Keyset pagination: an opaque cursor holding the last id seen, stable under concurrent inserts."""

import base64
import binascii
import json
from collections.abc import Callable
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from api.problems import ProblemError
from shared.problems import Problem

Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=200)]


Item = TypeVar("Item")
Row = TypeVar("Row")


class Page(BaseModel, Generic[Item]):
    """A page of a list: `Page[StockOut]` and so on, so the OpenAPI document names the items."""

    items: list[Item]
    next_cursor: str | None = Field(description="Give it as `cursor` for the next page; null on the last.")


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded))["after"]
        if isinstance(after, int) and not isinstance(after, bool) and after >= 0:
            return after
    except (ValueError, KeyError, TypeError, binascii.Error):
        pass
    raise ProblemError(Problem("validation-error", 422, "The cursor is not valid.",
                               {"errors": [{"loc": ["query", "cursor"], "msg": "invalid cursor",
                                            "type": "cursor_invalid"}]}))


def page(rows: list[Row], limit: int, to_item: Callable[[Row], Item],
         row_id: Callable[[Row], int]) -> Page[Item]:
    """Given up to limit+1 rows, the page of `limit` and the cursor to the next one."""
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=[to_item(r) for r in rows],
                next_cursor=encode_cursor(row_id(rows[-1])) if more and rows else None)
