"""A job as `GET /v1/jobs/{id}` shows it, plus its owner (the API strips it before showing)."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.clock import rfc3339
from shared.jobs.outcome import JobOutcome
from shared.models import Job


def document(*, job_id: str, kind: str, status: str, owner: int | None, submitted_at: Any,
             started_at: Any = None, completed_at: Any = None, result: Any = None,
             error: Any = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"job_id": job_id, "kind": kind, "status": status,
                           "submitted_at": rfc3339(submitted_at), "owner": owner}
    for name, value in (("started_at", rfc3339(started_at)), ("completed_at", rfc3339(completed_at)),
                        ("result", result), ("error", error)):
        if value is not None:
            doc[name] = value
    return doc


def from_row(job: Job) -> dict[str, Any]:
    return document(job_id=job.id, kind=job.kind, status=job.status, owner=job.api_key_id,
                    submitted_at=job.submitted_at, started_at=job.started_at,
                    completed_at=job.completed_at, result=job.result, error=job.error)


def from_outcome(outcome: JobOutcome) -> dict[str, Any]:
    return document(job_id=outcome.job_id, kind=outcome.kind, status=outcome.status,
                    owner=outcome.api_key_id, submitted_at=outcome.submitted_at,
                    started_at=outcome.started_at, completed_at=outcome.completed_at,
                    result=outcome.result, error=outcome.error)


# What a job document needs, without the payload (a batch's can be megabytes).
_DOCUMENT_COLUMNS = (Job.id, Job.kind, Job.status, Job.api_key_id, Job.submitted_at, Job.started_at,
                     Job.completed_at, Job.result, Job.error)


def _from_columns(row: Any) -> dict[str, Any]:
    return document(job_id=row.id, kind=row.kind, status=row.status, owner=row.api_key_id,
                    submitted_at=row.submitted_at, started_at=row.started_at,
                    completed_at=row.completed_at, result=row.result, error=row.error)


def read_database(session: Session, job_id: str) -> dict[str, Any] | None:
    row = session.execute(select(*_DOCUMENT_COLUMNS).where(Job.id == job_id)).first()
    return _from_columns(row) if row else None


def read_many_database(session: Session, job_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The jobs among these that exist, by id, in one query."""
    if not job_ids:
        return {}
    rows = session.execute(select(*_DOCUMENT_COLUMNS).where(Job.id.in_(job_ids)))
    return {row.id: _from_columns(row) for row in rows}
