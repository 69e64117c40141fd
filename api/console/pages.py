"""Rendering the console's pages: the templates, the headers every answer carries, and the route
class that turns a missing session into the login form and a problem into an error page.

The Content-Security-Policy allows scripts, styles and connections from the service only, and no
inline script or style at all: the pages' few scripts are static files (static/console.js), the
charts are inline SVG drawn with attributes, and a form posts to the service only.
"""

from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from starlette.templating import Jinja2Templates

from api.console.gate import SignInRequired, current_principal, end_session
from api.console.session import CSRF_FIELD
from api.problems import ProblemError, problem_response
from shared.problems import Problem

HERE = Path(__file__).parent
PREFIX = "/console"
LOGIN_PATH = f"{PREFIX}/login"
# The JSON endpoints the pages' scripts poll: problems, not pages, when something is wrong.
JSON_PREFIX = f"{PREFIX}/api/"

POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": POLICY,
    # Pages show stock and carry CSRF tokens: never kept by the browser or a proxy.
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

templates = Jinja2Templates(env=jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
    trim_blocks=True, lstrip_blocks=True))


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> HTMLResponse:
    """A page, with what the layout needs: who is signed in and the session's CSRF token."""
    session = getattr(request.state, "console_session", None)
    base = {"principal": current_principal(request), "csrf": session.csrf if session else "",
            "csrf_field": CSRF_FIELD, "prefix": PREFIX}
    return templates.TemplateResponse(request, name, {**base, **(context or {})}, status_code=status_code)


def error_page(request: Request, problem: Problem, headers: dict[str, str] | None = None) -> HTMLResponse:
    response = render(request, "error.html", {"problem": problem.to_dict()}, problem.status)
    response.headers.update(headers or {})
    return response


class ConsoleRoute(APIRoute):
    """Every console route: its answer carries HEADERS; without a session a page sends the browser
    to the login form (a JSON endpoint answers 401); a problem is an error page (a JSON endpoint
    answers it as problem+json)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        answers_json = self.path.startswith(JSON_PREFIX)

        async def console(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                if answers_json:
                    response = problem_response(Problem("unauthorized", 401, "Sign in to the console."))
                else:
                    response = RedirectResponse(LOGIN_PATH, status_code=303)
                end_session(response)
            except ProblemError as exc:
                if answers_json:
                    response = problem_response(exc.problem, exc.headers)
                else:
                    response = error_page(request, exc.problem, exc.headers)
            for name, value in HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return console
