"""The console's session: one cookie, encrypted and authenticated, holding the API key the operator
signed in with and the session's CSRF token.

Why an encrypted cookie and not a session kept in Redis: the embedded profile has no Redis, the
cookie needs no store to expire or clean, and every page still checks the key afresh (api/access.py),
so a revoked key ends its sessions at their next request. The cost: signing out removes the cookie
from the browser but cannot recall a copy of it, which stays usable until it expires
(CONSOLE_SESSION_SECONDS) or the key is revoked. The cookie is HttpOnly (no script reads it),
SameSite=Strict (no other site's page sends it) and Secure over https.

The encryption is Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`) under a key derived
from API_KEY_PEPPER with HKDF for this use only: the browser holds ciphertext, never the API key,
and a cookie changed by one bit is refused. Fernet's timestamp gives the expiry.

Every POST carries the session's CSRF token in its form (`csrf`), compared in constant time. Before
signing in the session has a token and no key, so the login form is protected too; signing in
starts a new session with a new token, so a token seen before the login is worth nothing after it.
"""

import base64
import hmac
import json
import secrets
from dataclasses import dataclass
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

COOKIE = "stock_console"
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf"
# Changing it signs every operator out (their cookies no longer decrypt).
_PURPOSE = b"stock console session v1"


@dataclass(frozen=True)
class ConsoleSession:
    csrf: str
    key: str | None = None  # the API key, once signed in

    @property
    def signed_in(self) -> bool:
        return self.key is not None


def new_session(key: str | None = None) -> ConsoleSession:
    return ConsoleSession(csrf=secrets.token_urlsafe(32), key=key)


@lru_cache(maxsize=4)
def _fernet(pepper: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(pepper.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def seal(session: ConsoleSession, pepper: str) -> str:
    """The cookie's value."""
    body = {"c": session.csrf} | ({"k": session.key} if session.key is not None else {})
    return _fernet(pepper).encrypt(json.dumps(body).encode()).decode()


def unseal(value: str | None, pepper: str, max_age_seconds: int) -> ConsoleSession | None:
    """The session in a cookie, or None if there is none, it was changed, or it is older than
    `max_age_seconds`."""
    if not value or len(value) > 4096:
        return None
    try:
        body = json.loads(_fernet(pepper).decrypt(value.encode(), ttl=max_age_seconds))
    except (InvalidToken, ValueError):
        return None
    csrf, key = body.get("c"), body.get("k")
    if not isinstance(csrf, str) or not (key is None or isinstance(key, str)):
        return None
    return ConsoleSession(csrf=csrf, key=key)


def csrf_matches(session: ConsoleSession | None, token: object) -> bool:
    """Whether a form's token is the session's."""
    if session is None or not isinstance(token, str) or not token:
        return False
    return hmac.compare_digest(session.csrf.encode(), token.encode())
