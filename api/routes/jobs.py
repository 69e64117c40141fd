"""Job status: the async request-reply status resource."""

from typing import Any

from fastapi import APIRouter

from api.deps import RedisDep, SessionDep
from api.problems import not_found
from shared import jobs

router = APIRouter(prefix="/v1")


@router.get("/jobs/{job_id}")
def get_job(job_id: str, session: SessionDep, client: RedisDep) -> dict[str, Any]:
    doc = jobs.read(client, session, job_id)
    if doc is None:
        raise not_found(f"Job {job_id!r}")
    doc.pop("owner", None)
    return doc
