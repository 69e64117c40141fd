"""Signing in and out, and the console's static files.

Signing in checks the key as the API does (api/access.py), so keys that are not valid count
against the address's limit like any other (429 past the burst), and a key without the `read`
scope is refused: the console is for looking first.
"""

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from api.console.gate import (
    authorize_key,
    checked_form,
    csrf_refused,
    end_session,
    keep_session,
    read_session,
    session_or_new,
)
from api.console.pages import HERE, LOGIN_PATH, PREFIX, ConsoleRoute, render
from api.console.session import new_session
from api.problems import ProblemError

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

HOME = f"{PREFIX}/stock"
STATIC = {name: (HERE / "static" / name, media_type) for name, media_type in (
    ("console.css", "text/css; charset=utf-8"),
    ("console.js", "text/javascript; charset=utf-8"),
)}


@router.get("")
def home() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=303)


@router.get("/login")
def login_form(request: Request) -> Response:
    session, is_new = session_or_new(request)
    if session.signed_in:
        return RedirectResponse(HOME, status_code=303)
    request.state.console_session = session
    response = render(request, "login.html", {"error": None})
    if is_new:
        keep_session(request, response, session)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    before = read_session(request)
    request.state.console_session = before
    try:
        form = await checked_form(request)
    except ProblemError:
        # Most likely a form older than its session (or cookies refused): a fresh form says so.
        request.state.console_session = session = new_session()
        response = render(request, "login.html", {"error": csrf_refused().problem.detail}, 403)
        keep_session(request, response, session)
        return response
    key = str(form.get("key") or "").strip()
    try:
        await authorize_key(request, key, "read")
    except ProblemError as exc:
        detail = "That API key is not valid, or has been revoked." if exc.problem.status == 401 \
            else exc.problem.detail
        return render(request, "login.html", {"error": detail}, exc.problem.status)
    redirect = RedirectResponse(HOME, status_code=303)
    keep_session(request, redirect, new_session(key))  # a new CSRF token from now on
    return redirect


@router.post("/logout")
async def logout(request: Request) -> Response:
    request.state.console_session = read_session(request)
    await checked_form(request)
    response = RedirectResponse(LOGIN_PATH, status_code=303)
    end_session(response)
    return response


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    path, media_type = STATIC[name]
    return Response(path.read_bytes(), media_type=media_type, headers={"Cache-Control": "no-cache"})
