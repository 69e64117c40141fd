"""Every error the API returns is RFC 9457 problem+json; nothing else leaks (no traces, no SQL)."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.problems import Problem

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


class ProblemError(Exception):
    """Raise from a route to answer with a problem."""

    def __init__(self, problem: Problem, headers: dict[str, str] | None = None) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.headers = headers


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(problem.to_dict(), status_code=problem.status, headers=headers,
                        media_type=PROBLEM_JSON)


def not_found(what: str) -> ProblemError:
    return ProblemError(Problem("not-found", 404, f"{what} not found."))


def _clean_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors without the echoed input (it may be huge) or internal URLs."""
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in errors]


def validation_problem(errors: list[dict[str, Any]]) -> Problem:
    cleaned = _clean_errors(errors)
    return Problem("validation-error", 422, f"{len(cleaned)} validation error(s) in the request.",
                   {"errors": cleaned})


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.problem, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem_response(Problem("malformed-json", 400, "The body is not valid JSON."))
        return problem_response(validation_problem(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's only 400 is a body it could not parse (bad UTF-8, too deep, too long a number).
        slug = {400: "malformed-json", 404: "not-found", 405: "method-not-allowed",
                413: "payload-too-large"}.get(exc.status_code, "http-error")
        return problem_response(Problem(slug, exc.status_code, str(exc.detail)),
                                getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem_response(Problem("internal-error", 500, "An unexpected error occurred."))
