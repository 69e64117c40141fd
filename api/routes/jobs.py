"""Job status (the async request-reply status resource) and a batch's lines."""

from collections import defaultdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.accept.submit import requested_wait
from api.accept.waiters import get_waiters
from api.auth import GuardedRoute, Reader
from api.deps import SessionDep, StatusBoardDep
from api.pagination import Cursor, Limit, Page, decode_cursor, encode_cursor
from api.problems import not_found
from api.schemas import FailedLine, JobLineOut, JobList, JobOut, SucceededLine
from shared import warehouse_limit
from shared.api_keys import Principal
from shared.db import get_session_factory
from shared.jobs.status import TERMINAL
from shared.models import JobLine, LedgerEntry
from shared.status_board import get_status_board

router = APIRouter(prefix="/v1", tags=["jobs"], route_class=GuardedRoute)

JobId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="The job id from a 202 answer.")]
PreferHeader = Annotated[str | None, Header(
    max_length=200, description="`wait=N` (N <= 30): answer as soon as the job ends, or after N "
    "seconds with its current status (RFC 7240).")]
MAX_IDS = 100
IDS_PATTERN = rf"^[A-Za-z0-9_-]{{1,64}}(,[A-Za-z0-9_-]{{1,64}}){{0,{MAX_IDS - 1}}}$"


def _is_visible(doc: dict[str, Any] | None, principal: Principal) -> bool:
    """Whether this key submitted the job or sees every job; another key's job is a 404, not a
    403, so job ids do not leak across partners."""
    return doc is not None and warehouse_limit.shows_job_of(principal, doc.get("owner"))


def _shown(doc: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in doc.items() if name != "owner"}


def _read_visible(job_ids: list[str], principal: Principal) -> dict[str, dict[str, Any]]:
    """The caller's jobs among these, with their owner."""
    with get_session_factory()() as session:
        found = get_status_board().read_many(session, job_ids)
    return {job_id: doc for job_id, doc in found.items() if _is_visible(doc, principal)}


@router.get("/jobs/{job_id}", response_model=JobOut, response_model_exclude_none=True, summary="Get a job")
async def get_job(job_id: JobId, principal: Reader, response: Response,
                  prefer: PreferHeader = None) -> dict[str, Any]:
    """Async so that a long poll holds no thread: it waits on the process's one subscription to
    finished jobs (api/accept/waiters.py); the database reads run in the thread pool."""
    jobs = await _read_waiting([job_id], principal, requested_wait(prefer), response)
    if job_id not in jobs:
        raise not_found(f"Job {job_id!r}")
    return jobs[job_id]


@router.get("/jobs", response_model=JobList, response_model_exclude_none=True,
            summary="Get many jobs at once")
async def list_jobs(principal: Reader, response: Response,
                    ids: Annotated[str, Query(pattern=IDS_PATTERN, description=(
                        f"Comma-separated job ids, at most {MAX_IDS}. Unknown ids and other keys' "
                        "jobs are left out."))],
                    prefer: PreferHeader = None) -> dict[str, Any]:
    """Many jobs at once; with `Prefer: wait=N`, answered when all of them have ended."""
    job_ids = list(dict.fromkeys(ids.split(",")))
    jobs = await _read_waiting(job_ids, principal, requested_wait(prefer), response)
    return {"items": [jobs[j] for j in job_ids if j in jobs]}


async def _read_waiting(job_ids: list[str], principal: Principal, wait: int,
                        response: Response) -> dict[str, dict[str, Any]]:
    """The caller's jobs among these, as shown; with `wait`, once all have ended or after `wait`
    seconds."""
    if not wait:
        jobs = await run_in_threadpool(_read_visible, job_ids, principal)
    else:
        waiters = get_waiters()
        # Registered before reading: an end announced between the read and the wait is not missed.
        async with waiters.expecting(principal.prefix, job_ids) as expected:
            jobs = await run_in_threadpool(_read_visible, job_ids, principal)
            for job_id in job_ids:
                if job_id in jobs:
                    expected.deliver(jobs[job_id])
                else:
                    waiters.forget(expected, job_id)  # unknown or another key's: nothing to wait for
            finished = await expected.wait(wait)
        # Only the caller's: another key's job may have been announced before it was told apart.
        jobs.update({job_id: doc for job_id, doc in finished.items() if _is_visible(doc, principal)})
        response.headers["Preference-Applied"] = f"wait={wait}"
    if any(doc["status"] not in TERMINAL for doc in jobs.values()):
        response.headers["Retry-After"] = "1"
    return {job_id: _shown(doc) for job_id, doc in jobs.items()}


_RESERVATION_TYPES = ("reserve", "release", "commit", "expire")


def _failed_lines(session: Session, job_id: str, after: int, limit: int) -> list[FailedLine]:
    rows = session.execute(select(JobLine.line, JobLine.error)
                           .where(JobLine.job_id == job_id, JobLine.line > after)
                           .order_by(JobLine.line).limit(limit))
    return [FailedLine(line=line, status="failed", error=error) for line, error in rows]


def _succeeded_lines(session: Session, job_id: str, after: int, limit: int) -> list[SucceededLine]:
    """Succeeded lines are not stored twice: their ledger entries are their result. A line may have
    several (a transfer's two sides, a count and the reservations it released), so the page's lines
    are chosen first and their entries read after."""
    # `line > after` leaves out the entries of single commands, whose line is NULL.
    lines = [line for line in session.scalars(
        select(LedgerEntry.line).where(LedgerEntry.job_id == job_id, LedgerEntry.line > after)
        .group_by(LedgerEntry.line).order_by(LedgerEntry.line).limit(limit)) if line is not None]
    if not lines:
        return []
    entries = session.execute(
        select(LedgerEntry.line, LedgerEntry.type, LedgerEntry.on_hand_after, LedgerEntry.reserved_after,
               LedgerEntry.version)
        .where(LedgerEntry.job_id == job_id, LedgerEntry.line.in_(lines))
        .order_by(LedgerEntry.line, LedgerEntry.id))
    by_line: dict[int | None, dict[str, Any]] = defaultdict(dict)
    for line, kind, on_hand_after, reserved_after, version in entries:
        level = {"on_hand_after": on_hand_after, "version_after": version}
        if kind in _RESERVATION_TYPES:
            level["reserved_after"] = reserved_after
        side = {"transfer_out": "from", "transfer_in": "to"}.get(kind)
        if side:
            by_line[line][side] = level
        else:
            by_line[line].update(level)
    return [SucceededLine(line=line, status="succeeded", result=by_line[line]) for line in lines]


@router.get("/jobs/{job_id}/lines", response_model=Page[JobLineOut], summary="List a batch's lines")
def list_job_lines(job_id: JobId, session: SessionDep, board: StatusBoardDep, principal: Reader,
                   status: Annotated[Literal["failed", "succeeded"] | None, Query()] = None,
                   limit: Limit = 100, cursor: Cursor = None) -> Page[JobLineOut]:
    if not _is_visible(board.read(session, job_id), principal):
        raise not_found(f"Job {job_id!r}")
    after = decode_cursor(cursor)
    after = -1 if after is None else after
    items: list[FailedLine | SucceededLine] = []
    if status in (None, "failed"):
        items += _failed_lines(session, job_id, after, limit + 1)
    if status in (None, "succeeded"):
        items += _succeeded_lines(session, job_id, after, limit + 1)
    items.sort(key=lambda item: item.line)
    more = len(items) > limit
    items = items[:limit]
    return Page(items=items, next_cursor=encode_cursor(items[-1].line) if more else None)
