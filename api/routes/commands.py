"""Stock commands and batches: validate, hand the job to the writer, answer 202 once it is
committed and queued (`api/job_writer.py`)."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response, status
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from api.auth import Writer
from api.idempotency import IdempotencyKey, fingerprint
from api.job_writer import get_job_writer
from api.metrics import count_accepted
from api.problems import ProblemError
from api.schemas import Accepted
from shared.ordering import slot_for
from shared.problems import Problem
from shared.schemas.commands import BatchRequest, Command
from shared.settings import get_settings

router = APIRouter(prefix="/v1")


ROUTE_PATH = "/v1/commands"


async def accept(idempotency_key: str | None, *, kind: str, mode: str | None, payload: Any,
                 first_warehouse: str, line_count: int = 1, api_key_id: int | None = None,
                 key: tuple[str, str] | None = None) -> tuple[Accepted, dict[str, str]]:
    """The job row is committed (the durable promise) before the 202; its message follows a few
    milliseconds later (api/publisher.py).
    The caller is `api_key_id` (authenticated by the route) or `key`, (prefix, secret) for the
    writer to check (`api/fast_commands.py`, which may get KeyRefused). Returns the answer and its
    headers."""
    acceptance = await get_job_writer().submit(
        api_key_id=api_key_id, key=key, kind=kind, mode=mode, payload=payload,
        slot=slot_for(first_warehouse), line_count=line_count, idempotency_key=idempotency_key,
        request_hash=fingerprint(kind, mode, payload) if idempotency_key else None)
    headers = {"Location": f"/v1/jobs/{acceptance.job_id}"}
    if acceptance.replayed:
        headers["Idempotent-Replayed"] = "true"
    else:
        count_accepted(kind)
    return Accepted(job_id=acceptance.job_id, kind=acceptance.kind, status=acceptance.status,
                    submitted_at=acceptance.submitted_at), headers


# Async: the request waits for the writer on the event loop, holding no thread or connection.
@router.post(ROUTE_PATH.removeprefix("/v1"), status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def submit_command(command: Annotated[Command, Body()], response: Response, principal: Writer,
                         idempotency_key: IdempotencyKey = None) -> Accepted:
    accepted, headers = await accept(idempotency_key, kind="command", mode=None,
                                     payload=command.model_dump(exclude_none=True),
                                     first_warehouse=command.first_warehouse, api_key_id=principal.key_id)
    response.headers.update(headers)
    return accepted


@router.post("/batches", status_code=status.HTTP_202_ACCEPTED, response_model=Accepted)
async def submit_batch(batch: BatchRequest, response: Response, principal: Writer,
                       idempotency_key: IdempotencyKey = None) -> Accepted:
    limit = get_settings().max_batch_lines
    if len(batch.commands) > limit:
        raise ProblemError(Problem("payload-too-large", 413,
                                   f"A batch takes at most {limit} commands; "
                                   f"this one has {len(batch.commands)}.",
                                   {"max_batch_lines": limit}))
    # Dumping up to 10,000 lines takes milliseconds: off the event loop.
    payload = await run_in_threadpool(
        lambda: {"commands": [c.model_dump(exclude_none=True) for c in batch.commands]})
    accepted, headers = await accept(idempotency_key, kind="batch", mode=batch.mode, payload=payload,
                                     first_warehouse=batch.commands[0].first_warehouse,
                                     line_count=len(batch.commands), api_key_id=principal.key_id)
    response.headers.update(headers)
    return accepted


def command_route() -> APIRoute:
    """The route object of POST /v1/commands, for the fast path's request metrics."""
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.path == ROUTE_PATH)
