"""Stock commands and batches: validate, authorize, then hand over to the accept machinery
(api/accept/), which answers 202 once the job is committed, or the outcome if asked to wait."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from api import examples
from api.accept.submit import Work, requested_wait, submit
from api.auth import GuardedRoute, Writer
from api.idempotency import IdempotencyKey
from api.problems import ProblemError
from api.schemas import Accepted, JobOut
from shared.problems import Problem
from shared.schemas.commands import BatchRequest, Command
from shared.settings import get_settings

router = APIRouter(prefix="/v1", tags=["commands"], route_class=GuardedRoute)

ROUTE_PATH = "/v1/commands"
BATCHES_PATH = "/v1/batches"  # the one route that takes the large body limit
PreferHeader = Annotated[str | None, Header(
    max_length=200, description="`wait=N` (N <= 30): answer with the outcome (200) if the job ends "
    "within N seconds, else 202 as usual (RFC 7240).")]
ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"model": JobOut, "description": "Asked to wait (`Prefer: wait=N`), and the job ended: its "
          "outcome, with `Content-Location` and `Preference-Applied`."},
    202: {"model": Accepted, "description": "The job is committed and queued: poll `Location`."},
}


# Async: the request waits for the writer (and its outcome) on the event loop, holding no thread.
@router.post(ROUTE_PATH.removeprefix("/v1"), status_code=status.HTTP_202_ACCEPTED, responses=ANSWERS,
             response_class=JSONResponse, summary="Submit a stock command")
async def submit_command(command: Annotated[Command, Body(openapi_examples=examples.COMMAND)],
                         principal: Writer, idempotency_key: IdempotencyKey = None,
                         prefer: PreferHeader = None) -> JSONResponse:
    work = Work("command", None, command.model_dump(exclude_none=True), (command,))
    return await submit(work, principal, idempotency_key=idempotency_key,
                        wait_seconds=requested_wait(prefer))


@router.post(BATCHES_PATH.removeprefix("/v1"), status_code=status.HTTP_202_ACCEPTED, responses=ANSWERS,
             response_class=JSONResponse, summary="Submit a batch of stock commands")
async def submit_batch(batch: Annotated[BatchRequest, Body(openapi_examples=examples.BATCH)],
                       principal: Writer, idempotency_key: IdempotencyKey = None,
                       prefer: PreferHeader = None) -> JSONResponse:
    limit = get_settings().max_batch_lines
    if len(batch.commands) > limit:
        raise ProblemError(Problem("payload-too-large", 413,
                                   f"A batch takes at most {limit} commands; "
                                   f"this one has {len(batch.commands)}.",
                                   {"max_batch_lines": limit}))
    # Dumping up to 10,000 lines takes milliseconds: off the event loop.
    payload = await run_in_threadpool(
        lambda: {"commands": [c.model_dump(exclude_none=True) for c in batch.commands]})
    work = Work("batch", batch.mode, payload, batch.commands)
    return await submit(work, principal, idempotency_key=idempotency_key,
                        wait_seconds=requested_wait(prefer))


def command_route() -> APIRoute:
    """The route object of POST /v1/commands, for the fast path's request metrics."""
    return next(r for r in router.routes if isinstance(r, APIRoute) and r.path == ROUTE_PATH)
