"""Every error the API returns is RFC 9457 problem+json; nothing else leaks (no traces, no SQL)."""

import json
import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.metrics import count_rejection
from shared.problems import Problem
from shared.settings import get_settings

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


def unavailable(what: str) -> ProblemError:
    """503 for a dependency that is down (the database, the queue): retry later, nothing was done."""
    return ProblemError(Problem("unavailable", 503, f"The {what} is unavailable; retry later."),
                        {"Retry-After": str(get_settings().overload_retry_after_seconds)})


def _clean_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors without the echoed input (it may be huge) or internal URLs."""
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in errors]


def validation_problem(errors: list[dict[str, Any]]) -> Problem:
    cleaned = _clean_errors(errors)
    return Problem("validation-error", 422, f"{len(cleaned)} validation error(s) in the request.",
                   {"errors": cleaned})


# What each error status means, for the OpenAPI document; every one is a problem.
_ERRORS = {
    400: "The body is not valid JSON (`/problems/malformed-json`).",
    401: "Missing or invalid API key (`/problems/unauthorized`).",
    403: "The API key lacks the scope (`/problems/forbidden`), or is not limited to a warehouse the "
         "request names (`/problems/forbidden-warehouse`).",
    404: "Not found (`/problems/not-found`).",
    409: "It already exists (`/problems/conflict`).",
    413: "The body or the batch is too large (`/problems/payload-too-large`).",
    422: "The request is not valid (`/problems/validation-error`, with `errors`).",
    431: "The request line and headers are too large, or too many (`/problems/headers-too-large`).",
    429: "The API key is over its rate, or the address over its invalid keys "
         "(`/problems/rate-limited`); see `Retry-After`.",
    503: "Overloaded or the queue is unavailable; see `Retry-After`.",
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "required": True, "schema": {"type": "string"}}}
_HEADERS = {401: {"WWW-Authenticate": {"description": "`Bearer`", "required": True,
                                       "schema": {"type": "string"}}},
            429: _RETRY_AFTER, 503: _RETRY_AFTER}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; more members may follow (`job_id`, `line`, ...).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "A stable slug URI, e.g. `/problems/not-found`."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["loc", "msg", "type"],
            "properties": {"loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                           "msg": {"type": "string"}, "type": {"type": "string"}}}},
    },
    "additionalProperties": True,
}


def _statuses(method: str, operation: dict[str, Any]) -> list[int]:
    """The error statuses an operation can answer with (API.md), from what it is."""
    statuses = [401, 403, 422, 429, 431]
    if "requestBody" in operation:
        statuses += [400, 413]
    if any(p.get("in") == "path" for p in operation.get("parameters", [])):
        statuses.append(404)
    if method == "post" and "201" in operation.get("responses", {}):
        statuses.append(409)
    if "202" in operation.get("responses", {}):
        statuses.append(503)
    return sorted(statuses)


def document_errors(spec: dict[str, Any]) -> dict[str, Any]:
    """Say in the OpenAPI document what the handlers here do: every /v1 error is a problem
    (FastAPI would document its own 422 body, which this API never sends), and /metrics is text.
    The HTTP server refuses headers that are too large before any route (api/http_limits.py): 431
    on every operation."""
    spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            responses["431"] = {"description": _ERRORS[431], "content": problem}
            if path.startswith("/v1/"):
                for status in _statuses(method, operation):
                    response = {"description": _ERRORS[status], "content": problem}
                    if status in _HEADERS:
                        response["headers"] = _HEADERS[status]
                    responses[str(status)] = response
    if "/metrics" in spec.get("paths", {}):
        spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"] = {
            "text/plain": {"schema": {"type": "string"}}}
    if "/readyz" in spec.get("paths", {}):
        spec["paths"]["/readyz"]["get"]["responses"]["503"] = {
            "description": "The database or Redis is unreachable.",
            "content": {"application/json": {"schema": {"type": "object"}}}}
    schemas = spec["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 body, now unused
        if f'"#/components/schemas/{unused}"' not in json.dumps(spec):
            schemas.pop(unused, None)
    return spec


def _allowed_methods(request: Request, fallback: str) -> str:
    """Every method of the path: Starlette's 405 names only those of the first route matching it
    (`POST` for /v1/products, which GET serves too). Read from the OpenAPI document, the one public
    list of every route's path and methods; a path it leaves out (/docs) keeps Starlette's answer."""
    patterns = getattr(request.app.state, "allowed_methods", None)
    if patterns is None:
        patterns = [(re.compile(re.sub(r"\\{[^}/]+\\}", "[^/]+", re.escape(path))),
                     {method.upper() for method in operations})
                    for path, operations in request.app.openapi().get("paths", {}).items()]
        request.app.state.allowed_methods = patterns
    methods = set()
    for pattern, operations in patterns:
        if pattern.fullmatch(request.url.path):
            methods |= operations | ({"HEAD"} if "GET" in operations else set())
    return ", ".join(sorted(methods)) if methods else fallback


def answer(request: Request, problem: Problem,
            headers: dict[str, str] | None = None) -> JSONResponse:
    """Every problem the handlers (and `api/accept/fast_path.py`) answer passes here, so refused
    submissions are counted once."""
    count_rejection(request.method, request.url.path, problem.slug)
    return problem_response(problem, headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return answer(request, exc.problem, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        if any(e.get("type") == "json_invalid" for e in errors):
            return answer(request, Problem("malformed-json", 400, "The body is not valid JSON."))
        return answer(request, validation_problem(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's only 400 is a body it could not parse (bad UTF-8, too deep, too long a number).
        slug = {400: "malformed-json", 404: "not-found", 405: "method-not-allowed",
                413: "payload-too-large"}.get(exc.status_code, "http-error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {})}
            headers["Allow"] = _allowed_methods(request, headers.get("Allow", ""))
        return answer(request, Problem(slug, exc.status_code, str(exc.detail)), headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return answer(request, Problem("internal-error", 500, "An unexpected error occurred."))
