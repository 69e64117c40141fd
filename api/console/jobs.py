"""The jobs page: a job by id, its progress until it ends (static/console.js polls the JSON
endpoint), and a batch's failed lines, shown and as CSV. The reads are the API's own
(api/routes/jobs.py): another key's job is not found, unless the key sees every job."""

import csv
import io
import re
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.console.gate import Reader
from api.console.pages import JSON_PREFIX, PREFIX, ConsoleRoute, render
from api.console.stock import read
from api.pagination import Page
from api.problems import not_found
from api.routes import jobs as job_reads
from api.schemas import FailedLine, JobLineOut
from shared.api_keys import Principal
from shared.jobs.status import TERMINAL
from shared.models import Job
from shared.schemas.text import FORMULA_STARTS
from shared.status_board import get_status_board

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
SHOWN_LINES = 100
CSV_COLUMNS = ("line", "warehouse", "sku", "quantity", "reference", "problem", "detail")


async def _job(job_id: str, principal: Principal) -> dict[str, Any]:
    if not JOB_ID.fullmatch(job_id):
        raise not_found(f"Job {job_id[:64]!r}")
    return await job_reads.get_job(job_id, principal, Response(), None)


def progress(job: dict[str, Any]) -> dict[str, Any]:
    """What the progress bar shows: a batch is applied in one transaction, so it moves from queued
    to running to its end, where the lines' outcome is known."""
    result = job.get("result") or {}
    done = job["status"] in TERMINAL
    total = result.get("total", 1 if job["kind"] == "command" else None)
    failed, succeeded = result.get("failed"), result.get("succeeded")
    if done and failed is None and total is not None:  # a command, or a batch given up without a result
        failed = total if job["status"] == "failed" else 0
        succeeded = total - failed
    return {"status": job["status"], "done": done, "total": total, "failed": failed,
            "succeeded": succeeded, "percent": 100 if done else (50 if job["status"] == "running" else 0)}


@router.get("/jobs")
def jobs_form(request: Request, principal: Reader, job_id: str | None = None) -> Response:
    job_id = (job_id or "").strip()
    if job_id:
        if JOB_ID.fullmatch(job_id):
            return RedirectResponse(f"{PREFIX}/jobs/{job_id}", status_code=303)
        return render(request, "jobs.html", {"job_id": job_id[:64], "error": "That is not a job id."}, 422)
    return render(request, "jobs.html", {"job_id": "", "error": None})


async def _failed_lines(job_id: str, principal: Principal, limit: int,
                        cursor: str | None) -> tuple[list[FailedLine], str | None]:
    """A page of the batch's failed lines, as GET /v1/jobs/{job_id}/lines?status=failed reads them,
    and the cursor to the next page."""
    def work(session: Session) -> Page[JobLineOut]:
        return job_reads.list_job_lines(job_id, session, get_status_board(), principal, "failed",
                                        limit, cursor)
    page = await read(work)
    return [item for item in page.items if isinstance(item, FailedLine)], page.next_cursor


@router.get("/jobs/{job_id}")
async def job_page(request: Request, principal: Reader, job_id: str) -> Response:
    job = await _job(job_id, principal)
    lines: list[Any] = []
    more = False
    if job["kind"] == "batch" and job["status"] in TERMINAL:
        lines, next_cursor = await _failed_lines(job_id, principal, SHOWN_LINES, None)
        more = next_cursor is not None
    return render(request, "job.html", {"job": job, "progress": progress(job), "failed_lines": lines,
                                        "more_failed": more})


@router.get(f"{JSON_PREFIX.removeprefix(PREFIX)}jobs/{{job_id}}")
async def job_json(principal: Reader, job_id: str) -> dict[str, Any]:
    job = await _job(job_id, principal)
    return {"job": job, "progress": progress(job)}


def _cell(value: Any) -> str:
    """A cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith((*FORMULA_STARTS, "\t", "\r")) else text


@router.get("/jobs/{job_id}/failed.csv")
async def failed_csv(principal: Reader, job_id: str) -> Response:
    await _job(job_id, principal)  # 404 for another key's job, before its payload is read
    payload = await read(lambda s: s.scalar(select(Job.payload).where(Job.id == job_id)))
    commands = payload.get("commands", []) if isinstance(payload, dict) else []
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    cursor = None
    while True:
        items, cursor = await _failed_lines(job_id, principal, 1000, cursor)
        for item in items:
            command = commands[item.line] if item.line < len(commands) else {}
            error = item.error or {}
            writer.writerow([_cell(v) for v in (
                item.line, command.get("warehouse"), command.get("sku"), command.get("quantity"),
                command.get("reference"), str(error.get("type", "")).removeprefix("/problems/"),
                error.get("detail"))])
        if cursor is None:
            break
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="failed-lines-{job_id}.csv"'})
