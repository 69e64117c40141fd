"""Who may do what: the one authorization decision, before a request's body is read.

Both entrances call `authorize`: the fast command path (api/accept/fast_path.py) and every /v1
route (api/auth.py). It reads the Bearer key, checks it (the secret against its keyed hash), takes
a token from the key's rate limit and checks the scope the route needs; a rule about who may call
what is written here once. What a request may touch once its body is known (the warehouse limit)
is decided where the work is submitted, which both entrances share (api/accept/submit.py).

Keys are kept per process (api/accept/known_keys.py): a key's scopes, warehouses and secret hash
never change, only whether it is revoked. So:
- routes that submit jobs trust a kept key, because the job writer's INSERT writes a job only if
  its key is not revoked at that moment (shared/jobs/rows.py `insert_jobs`): a revocation counts
  from the next command, and a busy key costs no query;
- every other route reads the key's row afresh (requests that arrive together share one query,
  api/accept/key_lookup.py), so a revocation counts from its next request too.

An address that keeps sending keys that are not valid is told to wait (429) and, while it waits,
gets no database lookups for keys this process does not know (api/admission.py).
"""

from starlette.datastructures import Headers
from starlette.types import Scope

from api.accept.key_lookup import get_key_lookup
from api.accept.known_keys import known_keys
from api.admission import invalid_keys, key_rate_limiter
from api.problems import ProblemError
from shared.api_keys import Principal, check, parse_token
from shared.problems import Problem

# Where the decision is kept in the ASGI scope, so a request the fast path hands to the route is
# not decided (nor rate-limited) twice.
PRINCIPAL = "stock.principal"


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(Problem("unauthorized", 401, detail), {"WWW-Authenticate": "Bearer"})


def forbidden(scope: str) -> ProblemError:
    return ProblemError(Problem("forbidden", 403, f"This API key lacks the {scope!r} scope.",
                                {"required_scope": scope}))


async def authorize(scope: Scope, needed: str, *, trust_kept_key: bool = False) -> Principal:
    """The caller's principal, or a ProblemError: 401 (no key, or not a valid one), 429 (the key
    over its rate, or the address over its invalid keys) or 403 (a valid key without `needed`).
    `trust_kept_key` only for requests whose job INSERT checks that the key is not revoked."""
    decided = scope.get(PRINCIPAL)
    if decided is None:
        decided = await _authenticate(scope, trust_kept_key)
        await key_rate_limiter().take(decided.key_id)
        scope[PRINCIPAL] = decided
    if not decided.can(needed):
        raise forbidden(needed)
    return decided


async def _authenticate(scope: Scope, trust_kept_key: bool) -> Principal:
    scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("Send an API key as `Authorization: Bearer <key>`.")
    address = (scope.get("client") or ("unknown",))[0]
    parsed = parse_token(token.strip())
    if parsed is None:
        raise _refused(address)
    prefix, secret = parsed
    keys = known_keys()
    row = keys.get(prefix)
    if row is None:  # an address told to wait gets no lookups of keys this process does not know
        invalid_keys().refuse_if_waiting(address)
    if row is None or not trust_kept_key:
        row = await get_key_lookup().find(prefix)
        keys.remember(prefix, row)
    principal = check(row, secret)
    if principal is None:
        raise _refused(address)
    return principal


def _refused(address: str) -> ProblemError:
    """401 for a key that is not valid, unless its address has sent too many (429)."""
    invalid_keys().count(address)
    return unauthorized("The API key is not valid or has been revoked.")


def forget_key(prefix: str) -> None:
    """The job writer found this key revoked: read it afresh next time."""
    known_keys().remember(prefix, None)
