"""`Authorization: Bearer <api key>` on every /v1 route, with a scope per route."""

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.accept.key_lookup import get_key_lookup
from api.admission import enforce_rate_limit
from api.problems import ProblemError
from shared.api_keys import Principal, check, parse_token
from shared.problems import Problem

# auto_error=False: a missing key is answered by us, as a problem, not by FastAPI.
bearer = HTTPBearer(auto_error=False, description="An API key made with `python -m cli.keys create`.")


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(Problem("unauthorized", 401, detail), {"WWW-Authenticate": "Bearer"})


def require(scope: str):  # type: ignore[no-untyped-def]
    """A dependency that authenticates the caller and checks one scope."""

    # Async: the key is read by the key lookup's thread, so a request holds no thread of its own.
    async def dependency(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                         ) -> Principal:
        if credentials is None:
            raise _unauthorized("Send an API key as `Authorization: Bearer <key>`.")
        parsed = parse_token(credentials.credentials)
        principal = None
        if parsed is not None:
            prefix, secret = parsed
            principal = check(await get_key_lookup().find(prefix), secret)
        if principal is None:
            raise _unauthorized("The API key is not valid or has been revoked.")
        await enforce_rate_limit(principal.key_id)
        if not principal.can(scope):
            raise ProblemError(Problem("forbidden", 403, f"This API key lacks the {scope!r} scope.",
                                       {"required_scope": scope}))
        return principal

    return dependency


Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
