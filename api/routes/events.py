"""The events feed: what happened, in commit order, after a cursor (shared/events/feed.py)."""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import GuardedRoute, Reader
from api.deps import SessionDep
from api.pagination import Cursor, Limit, decode_cursor, encode_cursor
from api.problems import ProblemError
from shared import warehouse_limit
from shared.api_keys import Principal
from shared.events import feed
from shared.events.kinds import TYPES
from shared.problems import Problem

router = APIRouter(prefix="/v1", tags=["events"], route_class=GuardedRoute)

EventType = Literal[TYPES]  # type: ignore[valid-type]


class EventOut(BaseModel):
    id: str
    type: str
    created_at: str
    data: dict[str, Any]


class EventPageOut(BaseModel):
    items: list[EventOut]
    next_cursor: str


def viewer_of(principal: Principal) -> feed.Viewer:
    # The warehouse limit's rule (shared/warehouse_limit.py): only an admin key that is not limited
    # to warehouses sees every event whole.
    return feed.Viewer(principal.key_id, warehouse_limit.sees_every_job(principal), principal.warehouses)


@router.get("/events", response_model=EventPageOut, summary="Read the event feed")
def list_events(session: SessionDep, principal: Reader, after: Cursor = None,
                type: Annotated[list[EventType] | None, Query()] = None, limit: Limit = 100) -> EventPageOut:
    """Events after `after` (a cursor from a previous page; none: from the oldest kept), oldest
    first. Keep `next_cursor` and ask again with it: no event is missed or seen twice."""
    try:
        page = feed.read(session, viewer_of(principal), decode_cursor(after) or 0, limit, type)
    except feed.CursorExpired as expired:
        raise ProblemError(Problem("cursor-expired", 410,
                                   f"{expired}; start again without `after`.")) from None
    return EventPageOut(items=[EventOut(**item) for item in page.items],
                        next_cursor=encode_cursor(page.next_position))
