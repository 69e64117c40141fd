"""Idempotency-Key: the same key and body name the original job; another body under the key is 422.

MySQL is the store: a unique (api_key_id, idempotency_key) on the job row, written in the same
commit as the job, so two racing requests create one job and no cache can forget a key early.
"""

import hashlib
import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Header
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.problems import ProblemError
from shared.api_keys import Principal
from shared.models import Job, utcnow
from shared.problems import Problem
from shared.settings import get_settings

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255,
                                              pattern=r"^[\x20-\x7e]+$")]


def fingerprint(kind: str, mode: str | None, payload: Any) -> str:
    canonical = json.dumps({"kind": kind, "mode": mode, "payload": payload}, sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_original(session: Session, principal: Principal, key: str, request_hash: str) -> Job | None:
    """The job this key already made, or None if there is none (or it is past retention)."""
    job = session.scalar(select(Job).where(Job.api_key_id == principal.key_id,
                                           Job.idempotency_key == key))
    if job is None:
        return None
    if job.submitted_at < utcnow() - timedelta(seconds=get_settings().idempotency_ttl_seconds):
        # Past retention the key is free again: release it from the old job.
        session.execute(update(Job).where(Job.id == job.id).values(idempotency_key=None))
        session.commit()
        return None
    if job.request_hash != request_hash:
        raise ProblemError(Problem("idempotency-key-mismatch", 422,
                                   "This Idempotency-Key was used with a different request body.",
                                   {"job_id": job.id}))
    return job
