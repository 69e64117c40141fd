"""Job status (the async request-reply status resource) and a batch's lines."""

import re
from collections import defaultdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import Reader
from api.deps import SessionDep, StatusBoardDep
from api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from api.problems import not_found
from shared.api_keys import Principal
from shared.db import get_session_factory
from shared.jobs.status import TERMINAL
from shared.models import JobLine, LedgerEntry
from shared.settings import get_settings
from shared.status_board import StatusBoard, get_status_board

router = APIRouter(prefix="/v1")


def _visible_job(session: Session, board: StatusBoard, job_id: str,
                 principal: Principal) -> dict[str, Any]:
    """The job, if this key submitted it or is an admin key; another key's job is a 404, not a 403,
    so job ids do not leak across partners."""
    doc = board.read(session, job_id)
    if doc is None or (doc.pop("owner", None) != principal.key_id and not principal.is_admin):
        raise not_found(f"Job {job_id!r}")
    return doc


PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d{1,6})(?:$|[,;\s])", re.IGNORECASE)


def _requested_wait(prefer: str | None) -> int:
    """Seconds asked for with `Prefer: wait=N` (RFC 7240), capped by MAX_WAIT_SECONDS."""
    match = PREFER_WAIT.search(prefer or "")
    return min(int(match.group(1)), get_settings().max_wait_seconds) if match else 0


def _read_visible(job_id: str, principal: Principal) -> dict[str, Any]:
    with get_session_factory()() as session:
        return _visible_job(session, get_status_board(), job_id, principal)


@router.get("/jobs/{job_id}")
async def get_job(job_id: str, principal: Reader, response: Response,
                  prefer: Annotated[str | None, Header(max_length=200)] = None) -> dict[str, Any]:
    """Async so that a long poll (`Prefer: wait=N`) holds no worker thread; the database reads
    still run in the thread pool."""
    doc = await run_in_threadpool(_read_visible, job_id, principal)
    wait = _requested_wait(prefer)
    if wait and doc["status"] not in TERMINAL:
        async def is_done() -> bool:
            current = await run_in_threadpool(_read_visible, job_id, principal)
            return current["status"] in TERMINAL

        await get_status_board().wait_until_done(job_id, wait, is_done)
        doc = await run_in_threadpool(_read_visible, job_id, principal)
        response.headers["Preference-Applied"] = f"wait={wait}"
    if doc["status"] not in TERMINAL:
        response.headers["Retry-After"] = "1"
    return doc


def _failed_lines(session: Session, job_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    rows = session.execute(select(JobLine.line, JobLine.error)
                           .where(JobLine.job_id == job_id, JobLine.line > after)
                           .order_by(JobLine.line).limit(limit))
    return [{"line": line, "status": "failed", "error": error} for line, error in rows]


def _succeeded_lines(session: Session, job_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    """Succeeded lines are not stored twice: their ledger entries are their result."""
    cap = 2 * limit + 1  # a transfer line has two entries
    entries = session.execute(
        select(LedgerEntry.line, LedgerEntry.type, LedgerEntry.on_hand_after, LedgerEntry.version)
        .where(LedgerEntry.job_id == job_id, LedgerEntry.line > after)
        .order_by(LedgerEntry.line, LedgerEntry.id).limit(cap)).all()
    by_line: dict[int, dict[str, Any]] = defaultdict(dict)
    for line, kind, on_hand_after, version in entries:
        level = {"on_hand_after": on_hand_after, "version_after": version}
        side = {"transfer_out": "from", "transfer_in": "to"}.get(kind)
        if side:
            by_line[line][side] = level
        else:
            by_line[line].update(level)
    lines = sorted(by_line)
    if len(entries) == cap:
        lines = lines[:-1]  # the last line may have been cut in half by the cap
    return [{"line": line, "status": "succeeded", "result": by_line[line]} for line in lines]


@router.get("/jobs/{job_id}/lines", response_model=Page)
def list_job_lines(job_id: str, session: SessionDep, board: StatusBoardDep, principal: Reader,
                   status: Annotated[Literal["failed", "succeeded"] | None, Query()] = None,
                   limit: Limit = 100, cursor: Cursor = None) -> Page:
    _visible_job(session, board, job_id, principal)
    after = decode_cursor(cursor)
    after = -1 if after is None else after
    items: list[dict[str, Any]] = []
    if status in (None, "failed"):
        items += _failed_lines(session, job_id, after, limit + 1)
    if status in (None, "succeeded"):
        items += _succeeded_lines(session, job_id, after, limit + 1)
    items.sort(key=lambda item: item["line"])
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=encode_cursor(items[-1]["line"]) if more else None)
