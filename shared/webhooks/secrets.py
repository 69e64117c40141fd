"""Signing secrets: made here in the Standard Webhooks format (`whsec_` + base64), shown once, and
kept encrypted with a key derived from API_KEY_PEPPER, since signing needs them back."""

import base64
import secrets

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.settings import get_settings

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _fernet() -> Fernet:
    pepper = get_settings().api_key_pepper
    if pepper is None or not pepper.get_secret_value():
        raise RuntimeError("API_KEY_PEPPER is not set; bin/run writes one to .env on first start")
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=b"stock webhook secrets").derive(pepper.get_secret_value().encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def unseal(sealed: str) -> str:
    return _fernet().decrypt(sealed.encode()).decode()
