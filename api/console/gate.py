"""Who is looking at a console page, decided by the API's own rule (api/access.py): the key kept in
the session cookie is checked as a Bearer key would be (revocation, rate, scope), and the principal
it gives carries the same warehouse limit into every read and submission.

A page asks for its scope with `Viewer(scope)`; a POST also checks the form's CSRF token
(`checked_form`), after the session and before anything is done.
"""

from typing import Annotated, Any

from fastapi import Depends, Request, Response
from starlette.datastructures import FormData

from api.access import PRINCIPAL, authorize
from api.console.session import (
    COOKIE,
    COOKIE_PATH,
    CSRF_FIELD,
    ConsoleSession,
    csrf_matches,
    new_session,
    seal,
    unseal,
)
from api.problems import ProblemError
from shared.api_keys import Principal
from shared.problems import Problem
from shared.settings import get_settings


class SignInRequired(Exception):
    """No session, an expired one, or its key is no longer valid: the page sends the browser to the
    login form (a JSON endpoint answers 401)."""


def _pepper() -> str:
    pepper = get_settings().api_key_pepper
    if pepper is None or not pepper.get_secret_value():
        raise RuntimeError("API_KEY_PEPPER is not set; bin/run writes one to .env on first start")
    return pepper.get_secret_value()


def read_session(request: Request) -> ConsoleSession | None:
    return unseal(request.cookies.get(COOKIE), _pepper(), get_settings().console_session_seconds)


def keep_session(request: Request, response: Response, session: ConsoleSession) -> None:
    """Set the session cookie on the response."""
    settings = get_settings()
    response.set_cookie(COOKIE, seal(session, _pepper()), max_age=settings.console_session_seconds,
                        path=COOKIE_PATH, httponly=True, samesite="strict",
                        secure=settings.console_secure_cookie or request.url.scheme == "https")


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def session_or_new(request: Request) -> tuple[ConsoleSession, bool]:
    """The request's session, or a new one without a key (the login form's CSRF token); and
    whether it is new (to be set as the cookie)."""
    session = read_session(request)
    return (session, False) if session is not None else (new_session(), True)


async def authorize_key(request: Request, key: str, needed: str) -> Principal:
    """The API's decision for this key, as if it had come as `Authorization: Bearer <key>` from
    the browser's address. Raises the API's ProblemError (401, 403, 429)."""
    scope: dict[str, Any] = {"type": "http", "client": request.scope.get("client"),
                             "headers": [(b"authorization", f"Bearer {key}".encode())]}
    if PRINCIPAL in request.scope:
        scope[PRINCIPAL] = request.scope[PRINCIPAL]
    try:
        return await authorize(scope, needed)
    finally:
        if PRINCIPAL in scope:  # decided even when the scope was lacking: the error page's menu
            request.scope[PRINCIPAL] = scope[PRINCIPAL]


def current_principal(request: Request) -> Principal | None:
    principal = request.scope.get(PRINCIPAL)
    return principal if isinstance(principal, Principal) else None


def viewer(needed: str):  # type: ignore[no-untyped-def]
    """A dependency: the signed-in operator's principal, if their key has `needed`."""

    async def dependency(request: Request) -> Principal:
        session = read_session(request)
        if session is None or session.key is None:
            raise SignInRequired
        request.state.console_session = session
        try:
            return await authorize_key(request, session.key, needed)
        except ProblemError as exc:
            if exc.problem.status == 401:  # revoked since the sign-in
                raise SignInRequired from None
            raise

    return dependency


Reader = Annotated[Principal, Depends(viewer("read"))]
Writer = Annotated[Principal, Depends(viewer("write"))]
Admin = Annotated[Principal, Depends(viewer("admin"))]


def csrf_refused() -> ProblemError:
    return ProblemError(Problem("csrf-failed", 403, "The form's CSRF token is missing or not this "
                                "session's; reload the page and try again."))


async def checked_form(request: Request, *, max_part_size: int = 1024 * 1024) -> FormData:
    """The POST's form, once its CSRF token is the session's; else the 403."""
    form = await request.form(max_part_size=max_part_size)
    session = getattr(request.state, "console_session", None) or read_session(request)
    if not csrf_matches(session, form.get(CSRF_FIELD)):
        raise csrf_refused()
    return form
