"""The console's session cookie and CSRF check (api/console/session.py): the browser holds
ciphertext it cannot read or change, it expires, and a form's token must be its session's."""

import base64
import time

import pytest
from cryptography import fernet

from api.console.session import ConsoleSession, csrf_matches, new_session, seal, unseal

PEPPER = "unit-test-pepper"
KEY = "sk_0123456789ab_secret-part-of-the-key"


def test_a_sealed_session_opens_with_the_same_pepper_only():
    session = new_session(KEY)
    value = seal(session, PEPPER)
    assert unseal(value, PEPPER, 3600) == session
    assert unseal(value, "another-pepper", 3600) is None


def test_the_cookie_does_not_show_the_key():
    value = seal(new_session(KEY), PEPPER)
    decoded = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert "secret-part" not in value and b"secret-part" not in decoded
    assert b"0123456789ab" not in decoded


def test_a_changed_or_foreign_cookie_is_no_session():
    value = seal(new_session(KEY), PEPPER)
    flipped = value[:20] + ("A" if value[20] != "A" else "B") + value[21:]
    for bad in (flipped, "", None, "not-a-token", value[:-6], "A" * 5000):
        assert unseal(bad, PEPPER, 3600) is None


def test_a_session_older_than_its_lifetime_is_no_session(monkeypatch):
    value = seal(new_session(KEY), PEPPER)
    later = time.time() + 3601
    monkeypatch.setattr(fernet.time, "time", lambda: later)  # what Fernet reads when it decrypts
    assert unseal(value, PEPPER, 3600) is None
    assert unseal(value, PEPPER, 7200) is not None


def test_a_session_before_the_login_has_a_token_and_no_key():
    anonymous = new_session()
    assert not anonymous.signed_in and anonymous.csrf
    assert unseal(seal(anonymous, PEPPER), PEPPER, 60) == anonymous
    assert new_session().csrf != anonymous.csrf  # a login starts a new session with a new token


@pytest.mark.parametrize("token", [None, "", 5, ["x"], "wrong", "abc"])
def test_a_form_token_that_is_not_the_sessions_is_refused(token):
    assert not csrf_matches(ConsoleSession(csrf="abc" + "d" * 40), token)


def test_the_sessions_own_token_passes():
    session = new_session(KEY)
    assert csrf_matches(session, session.csrf)
    assert not csrf_matches(None, session.csrf)
