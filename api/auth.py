"""`Authorization: Bearer <api key>` on every /v1 route, decided before the body is read.

FastAPI reads and parses a request's body before it solves the route's dependencies, so a
dependency that checks the key comes too late: an unauthenticated large batch would be parsed
first. So the /v1 routers use `GuardedRoute`: its handler asks for the decision (api/access.py:
key, rate, scope) first, and only then lets FastAPI read the body, which it parses refusing
duplicate keys (api/strict_json.py). `require(scope)` names the scope a route needs (and puts the
Bearer scheme in the OpenAPI document); as a dependency it hands the route the decided principal.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import strict_json
from api.access import authorize
from shared.api_keys import Principal

# auto_error=False: a missing key is answered by us, as a problem, not by FastAPI.
bearer = HTTPBearer(auto_error=False, description="An API key made with `python -m cli.keys create`.")


def require(scope: str, *, trust_kept_key: bool = False):  # type: ignore[no-untyped-def]
    """A dependency naming the scope a route needs. `trust_kept_key` only for routes whose job
    INSERT checks that the key is not revoked (api/access.py)."""

    async def dependency(request: Request,
                         _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
        # Decided by GuardedRoute before the body was read; asked here only for a route that is not one.
        return await authorize(request.scope, scope, trust_kept_key=trust_kept_key)

    dependency.required_scope = scope  # type: ignore[attr-defined]
    dependency.trust_kept_key = trust_kept_key  # type: ignore[attr-defined]
    return dependency


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json.loads(await self.body())
        return self._json


def _requirement(dependant: Dependant) -> Callable[..., Any] | None:
    """The `require(...)` dependency among a route's, however deep."""
    for sub in dependant.dependencies:
        if hasattr(sub.call, "required_scope"):
            return sub.call
        found = _requirement(sub)
        if found is not None:
            return found
    return None


class GuardedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        requirement = _requirement(self.dependant)

        async def guarded(request: Request) -> Response:
            if requirement is not None:
                await authorize(request.scope, requirement.required_scope,  # type: ignore[attr-defined]
                                trust_kept_key=requirement.trust_kept_key)  # type: ignore[attr-defined]
            return await handler(StrictJsonRequest(request.scope, request.receive, request._send))

        return guarded


Reader = Annotated[Principal, Depends(require("read"))]
# Commands and batches: their job INSERT checks that the key is not revoked.
Writer = Annotated[Principal, Depends(require("write", trust_kept_key=True))]
CatalogWriter = Annotated[Principal, Depends(require("catalog"))]

