"""Accept a command or batch and answer it: `202 Accepted` once its job is committed, or, when the
client asked to wait (`Prefer: wait=N`, RFC 7240), its outcome as soon as it is known.

Both entrances end here: the fast path for plain single commands (api/accept/fast_path.py) and
the routes (api/routes/commands.py), each with the caller already authorized (api/access.py). What
the work may touch is decided here, for both: a key limited to warehouses submits nothing that
names another (shared/warehouse_limit.py). The job is always committed before the answer, waiting
or not, and an idempotent replay is answered the same way as the original, with the original job.
"""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from api.accept.routing import plain_slot, reservation_slot, touches_reservations
from api.accept.waiters import get_waiters
from api.accept.writer import Acceptance, KeyRevoked, get_job_writer
from api.access import forget_key, unauthorized
from api.idempotency import fingerprint
from api.metrics import count_accepted
from api.problems import ProblemError
from shared import warehouse_limit
from shared.api_keys import Principal
from shared.db import get_session_factory
from shared.schemas.commands import CommandBase
from shared.settings import get_settings
from shared.status_board import get_status_board

PREFER_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d{1,6})(?:$|[,;\s])", re.IGNORECASE)


def requested_wait(prefer: str | None) -> int:
    """Seconds asked for with `Prefer: wait=N` (RFC 7240), capped by MAX_WAIT_SECONDS; 0 if none."""
    match = PREFER_WAIT.search(prefer or "")
    return min(int(match.group(1)), get_settings().max_wait_seconds) if match else 0


@dataclass(frozen=True)
class Work:
    """What a request asks to be done: one command, or a batch of them."""

    kind: str  # command, batch
    mode: str | None  # a batch's atomic or independent
    payload: Any
    commands: Sequence[CommandBase]

    @property
    def line_count(self) -> int:
        return len(self.commands)


async def submit(work: Work, principal: Principal, *, idempotency_key: str | None = None,
                 wait_seconds: int = 0) -> JSONResponse:
    """Raises a ProblemError to answer instead: the warehouse limit's 403, the writer's refusals,
    or a 401 if the key was revoked since it was checked."""
    if principal.warehouses is not None:
        refused = warehouse_limit.refusal(principal, [c.warehouses for c in work.commands],
                                          batch=work.kind == "batch")
        if refused is not None:
            raise ProblemError(refused)
    try:
        return await _submit(work, principal, idempotency_key, wait_seconds)
    except KeyRevoked:
        forget_key(principal.prefix)
        raise unauthorized("The API key is not valid or has been revoked.") from None


async def _submit(work: Work, principal: Principal, idempotency_key: str | None,
                  wait_seconds: int) -> JSONResponse:
    job_id = str(uuid.uuid4())
    if not wait_seconds:
        return _accepted(await _write(job_id, work, principal, idempotency_key))
    waiters = get_waiters()
    # Registered before the job exists: its outcome cannot be announced before anyone listens.
    async with waiters.expecting(principal.prefix, [job_id]) as expected:
        acceptance = await _write(job_id, work, principal, idempotency_key)
        if acceptance.job_id != job_id:  # a replay: the original job may have finished long ago
            waiters.replace(expected, job_id, acceptance.job_id)
            doc = await run_in_threadpool(_read, acceptance.job_id)
            if doc is not None:
                expected.deliver(doc)
        finished = await expected.wait(wait_seconds)
    doc = finished.get(acceptance.job_id)
    if doc is None:
        return _accepted(acceptance, {"Preference-Applied": f"wait={wait_seconds}"})
    return _outcome(acceptance, doc, wait_seconds)


async def _write(job_id: str, work: Work, principal: Principal,
                 idempotency_key: str | None) -> Acceptance:
    commands = list(work.commands)
    if touches_reservations(commands):
        slot = await run_in_threadpool(reservation_slot, commands, principal.key_id)
    else:
        slot = plain_slot(commands)
    acceptance = await get_job_writer().submit(
        job_id=job_id, api_key_id=principal.key_id, kind=work.kind, mode=work.mode,
        payload=work.payload, slot=slot,
        line_count=work.line_count, idempotency_key=idempotency_key,
        request_hash=fingerprint(work.kind, work.mode, work.payload) if idempotency_key else None)
    if not acceptance.replayed:
        count_accepted(work.kind)
    return acceptance


def _read(job_id: str) -> dict[str, Any] | None:
    with get_session_factory()() as session:
        return get_status_board().read(session, job_id)


def _replay_headers(acceptance: Acceptance) -> dict[str, str]:
    return {"Idempotent-Replayed": "true"} if acceptance.replayed else {}


def _accepted(acceptance: Acceptance, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"job_id": acceptance.job_id, "kind": acceptance.kind, "status": acceptance.status,
            "submitted_at": acceptance.submitted_at}
    return JSONResponse(body, status_code=202, headers={
        "Location": f"/v1/jobs/{acceptance.job_id}", **_replay_headers(acceptance), **(headers or {})})


def _outcome(acceptance: Acceptance, doc: dict[str, Any], wait_seconds: int) -> JSONResponse:
    shown = {name: value for name, value in doc.items() if name != "owner"}
    return JSONResponse(shown, status_code=200, headers={
        "Content-Location": f"/v1/jobs/{acceptance.job_id}", "Preference-Applied": f"wait={wait_seconds}",
        **_replay_headers(acceptance)})
