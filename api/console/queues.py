"""The queues page: per shard, the jobs accepted and not finished, the oldest one's age and the
wake-ups waiting in the broker (what /metrics shows, from shared/queue_stats.py); and the jobs
finished per second with the share that failed, over the last WINDOW_SECONDS. The page draws them
once; static/console.js polls the JSON endpoint every few seconds and draws the live charts.

Jobs finished are counted from the event feed's `job.completed` events (one per finished job,
written with it), through the events' `created_at` index: a range scan of the window's events,
however large the job table. Warehouse-limited keys see these totals too: counts, never ids.
"""

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from api.console.gate import Reader
from api.console.pages import JSON_PREFIX, PREFIX, ConsoleRoute, render
from api.console.stock import read
from api.problems import unavailable
from shared.clock import rfc3339
from shared.events.kinds import JOB_COMPLETED
from shared.jobs.status import SUCCEEDED
from shared.models import Event, utcnow
from shared.queue_stats import BrokerUnavailable, unfinished_jobs, waiting_messages
from shared.settings import get_settings

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

WINDOW_SECONDS = 10
REFRESH_SECONDS = 2


def _finished(session: Session, since: Any) -> tuple[int, int]:
    """(jobs finished since, of which did not succeed in full)."""
    status = Event.data["status"].as_string()
    total, failed = session.execute(
        select(func.count(), func.coalesce(func.sum(case((status != SUCCEEDED, 1), else_=0)), 0))
        .where(Event.created_at >= since, Event.type == JOB_COMPLETED)).one()
    return int(total), int(failed)


def snapshot(session: Session) -> dict[str, Any]:
    """The figures the page shows, as its JSON endpoint answers them."""
    settings = get_settings()
    now = utcnow()
    backlog = unfinished_jobs(session)
    try:
        messages: dict[int, int] | None = waiting_messages()
    except BrokerUnavailable:
        messages = None
    shards = []
    for shard in range(settings.shard_count):
        jobs = backlog.get(shard)
        oldest = jobs.oldest_submitted_at if jobs else None
        shards.append({"shard": shard, "queued": jobs.queued if jobs else 0,
                       "running": jobs.running if jobs else 0,
                       "oldest_age_seconds": round(max((now - oldest).total_seconds(), 0.0), 3)
                       if oldest else 0.0,
                       "messages": messages.get(shard, 0) if messages is not None else None})
    total, failed = _finished(session, now - timedelta(seconds=WINDOW_SECONDS))
    return {"at": rfc3339(now), "shards": shards, "high_water_mark": settings.max_queued_jobs,
            "window_seconds": WINDOW_SECONDS, "finished": total,
            "jobs_per_second": round(total / WINDOW_SECONDS, 2),
            "failed_share": round(failed / total, 4) if total else 0.0,
            "refresh_seconds": REFRESH_SECONDS}


async def _snapshot() -> dict[str, Any] | None:
    try:
        return await read(snapshot)
    except SQLAlchemyError:
        return None


@router.get("/queues")
async def queues_page(request: Request, principal: Reader) -> Response:
    return render(request, "queues.html", {"snapshot": await _snapshot(), "refresh": REFRESH_SECONDS})


@router.get(f"{JSON_PREFIX.removeprefix(PREFIX)}queues")
async def queues_json(principal: Reader) -> dict[str, Any]:
    figures = await _snapshot()
    if figures is None:
        raise unavailable("database")
    return figures
