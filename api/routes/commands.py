"""Stock commands and batches: validate, record the job, queue it, answer 202."""

import uuid
from typing import Annotated, Any

import redis
from fastapi import APIRouter, Body, Response, status
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from api.admission import enforce_high_water_mark
from api.auth import Writer
from api.deps import RedisDep, SessionDep
from api.idempotency import IdempotencyKey, find_original, fingerprint
from api.problems import ProblemError
from api.schemas import Accepted
from shared import jobs
from shared.api_keys import Principal
from shared.celery_app import enqueue_job, shard_for
from shared.models import Job, utcnow
from shared.problems import Problem
from shared.schemas.commands import BatchRequest, Command
from shared.settings import get_settings

router = APIRouter(prefix="/v1")


def _replay(job: Job, response: Response) -> Accepted:
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    response.headers["Idempotent-Replayed"] = "true"
    return Accepted(job_id=job.id, kind=job.kind, status=job.status,
                    submitted_at=jobs.from_row(job)["submitted_at"])


def _accept(session: SessionDep, client: redis.Redis, response: Response, principal: Principal,
            idempotency_key: str | None, *, kind: str, mode: str | None, payload: Any,
            first_warehouse: str) -> Accepted:
    """Commit the job row, then queue it: the row is the durable promise, the message the nudge."""
    settings = get_settings()
    request_hash = fingerprint(kind, mode, payload) if idempotency_key else None
    if idempotency_key:
        original = find_original(session, principal, idempotency_key, request_hash)
        if original:
            return _replay(original, response)
    enforce_high_water_mark(client)  # after the replay check: a replay adds no work
    job = Job(id=str(uuid.uuid4()), kind=kind, mode=mode, status="queued", payload=payload,
              shard=shard_for(first_warehouse, settings.shard_count), attempts=0,
              api_key_id=principal.key_id, idempotency_key=idempotency_key,
              request_hash=request_hash, submitted_at=utcnow())
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        # A concurrent request with the same key committed first: answer with its job.
        session.rollback()
        original = find_original(session, principal, idempotency_key or "", request_hash or "")
        if original is None:
            raise
        return _replay(original, response)
    doc = jobs.from_row(job)
    try:
        # Before queuing: once queued, the worker's later status must not be overwritten.
        jobs.publish(client, doc, settings.job_status_ttl_seconds)
    except redis.RedisError:
        pass  # polls fall back to MySQL
    try:
        enqueue_job(job.id, job.shard)
    except Exception:
        # Not queued means not accepted: take the row back so nothing applies it later. If a starting
        # worker's recovery has already taken it, it will be applied: then it is accepted after all.
        taken_back = session.execute(delete(Job).where(Job.id == job.id, Job.status == "queued"))
        session.commit()
        if taken_back.rowcount == 1:
            raise ProblemError(Problem("unavailable", 503, "The queue is unavailable; retry later."),
                               {"Retry-After": "5"}) from None
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return Accepted(job_id=job.id, kind=kind, status="queued", submitted_at=doc["submitted_at"])


@router.post("/commands", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
def submit_command(command: Annotated[Command, Body()], session: SessionDep, client: RedisDep,
                   response: Response, principal: Writer,
                   idempotency_key: IdempotencyKey = None) -> Accepted:
    return _accept(session, client, response, principal, idempotency_key, kind="command", mode=None,
                   payload=command.model_dump(exclude_none=True),
                   first_warehouse=command.first_warehouse)


@router.post("/batches", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
def submit_batch(batch: BatchRequest, session: SessionDep, client: RedisDep,
                 response: Response, principal: Writer,
                 idempotency_key: IdempotencyKey = None) -> Accepted:
    limit = get_settings().max_batch_lines
    if len(batch.commands) > limit:
        raise ProblemError(Problem("payload-too-large", 413,
                                   f"A batch takes at most {limit} commands; "
                                   f"this one has {len(batch.commands)}.",
                                   {"max_batch_lines": limit}))
    payload = {"commands": [c.model_dump(exclude_none=True) for c in batch.commands]}
    return _accept(session, client, response, principal, idempotency_key, kind="batch",
                   mode=batch.mode, payload=payload, first_warehouse=batch.commands[0].first_warehouse)
