"""`Authorization: Bearer <api key>` on every /v1 route, with a scope per route."""

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.admission import enforce_rate_limit
from api.deps import RedisDep
from api.problems import ProblemError
from shared.api_keys import Principal, authenticate
from shared.db import get_session_factory
from shared.problems import Problem

# auto_error=False: a missing key is answered by us, as a problem, not by FastAPI.
bearer = HTTPBearer(auto_error=False, description="An API key made with `python -m cli.keys create`.")


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(Problem("unauthorized", 401, detail), {"WWW-Authenticate": "Bearer"})


def require(scope: str):  # type: ignore[no-untyped-def]
    """A dependency that authenticates the caller and checks one scope."""

    def dependency(client: RedisDep,
                   credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                   ) -> Principal:
        if credentials is None:
            raise _unauthorized("Send an API key as `Authorization: Bearer <key>`.")
        # A session of its own, closed at once: a long poll must not hold a pooled connection.
        with get_session_factory()() as session:
            principal = authenticate(session, credentials.credentials)
        if principal is None:
            raise _unauthorized("The API key is not valid or has been revoked.")
        enforce_rate_limit(client, principal.key_id)
        if not principal.can(scope):
            raise ProblemError(Problem("forbidden", 403, f"This API key lacks the {scope!r} scope.",
                                       {"required_scope": scope}))
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
