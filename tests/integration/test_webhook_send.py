"""A claim's deliveries over HTTPS (shared/webhooks/deliver.py): sent to the address that was
checked, whatever the name resolves to, while the Host header, SNI and the certificate check still
name the receiver's host; one kept-alive connection for the whole claim; every request signed."""

import json
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from standardwebhooks import Webhook

from shared.settings import get_settings
from shared.webhooks import addresses, deliver
from shared.webhooks.secrets import new_secret
from tests.support.receiver import Receiver

HOST = "receiver.test"  # resolves nowhere: only the checked address can reach the receiver


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
                 issuer_key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer.subject if issuer else x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                                        subject)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(hours=1)))
    if issuer is None:
        builder = (builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                content_commitment=False, key_encipherment=False,
                                                data_encipherment=False, key_agreement=False,
                                                encipher_only=False, decipher_only=False), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                  critical=False))
    else:
        builder = (builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                  critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def authority() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    return _certificate("stock tests CA", key, None, key), key


def _https_receiver(tmp_path: Path, authority, name: str) -> tuple[Receiver, list[str | None]]:  # type: ignore[no-untyped-def]
    """A receiver whose certificate names `name`; the list gets the SNI of each TLS handshake."""
    ca, ca_key = authority
    key = ec.generate_private_key(ec.SECP256R1())
    chain = tmp_path / "receiver.pem"
    chain.write_bytes(_certificate(name, key, ca, ca_key).public_bytes(serialization.Encoding.PEM)
                      + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(chain)
    handshakes: list[str | None] = []
    server_side.sni_callback = lambda _socket, server_name, _context: handshakes.append(server_name)
    return Receiver(tls=server_side, keep_alive=True).start(), handshakes


@pytest.fixture
def trust(authority, monkeypatch):  # type: ignore[no-untyped-def]
    """The sender trusts the tests' authority instead of the public ones."""
    ca_pem = authority[0].public_bytes(serialization.Encoding.PEM).decode()
    client_side = ssl.create_default_context(cadata=ca_pem)
    monkeypatch.setattr(deliver, "_tls_context", lambda: client_side)


def _checked_as(monkeypatch, port: int) -> None:  # type: ignore[no-untyped-def]
    target = addresses.Target(f"https://{HOST}:{port}/hook?tenant=7", "https", HOST, f"{HOST}:{port}", port,
                              "/hook?tenant=7", "127.0.0.1")
    monkeypatch.setattr(addresses, "check", lambda url, allow_private: target)


def _claim(url: str, secret: str, count: int) -> deliver.Claim:
    now = datetime.now(UTC)
    return deliver.Claim("sub_test", url, secret, [
        deliver.Message(n, f"evt_{n}", json.dumps({"n": n}), now) for n in range(count)])


def test_https_deliveries_reach_the_checked_address_in_the_hosts_name_on_one_connection(
        tmp_path, authority, trust, monkeypatch):
    receiver, handshakes = _https_receiver(tmp_path, authority, HOST)
    try:
        _checked_as(monkeypatch, receiver.port)
        secret = new_secret()
        answers = deliver._send(_claim(f"https://{HOST}:{receiver.port}/hook?tenant=7", secret, 3),
                                get_settings())
    finally:
        receiver.stop()
    assert answers == [(200, None)] * 3
    assert handshakes == [HOST]
    assert len({r.peer_port for r in receiver.received}) == 1
    assert {(r.headers["host"], r.path) for r in receiver.received} == {(f"{HOST}:{receiver.port}",
                                                                         "/hook?tenant=7")}
    verifier = Webhook(secret)
    assert [verifier.verify(r.body, r.headers) for r in receiver.received] == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_a_certificate_for_another_name_gets_no_delivery(tmp_path, authority, trust, monkeypatch):
    receiver, _ = _https_receiver(tmp_path, authority, "someone-else.test")
    try:
        _checked_as(monkeypatch, receiver.port)
        claim = _claim(f"https://{HOST}:{receiver.port}/hook", new_secret(), 2)
        answers = deliver._send(claim, get_settings())
    finally:
        receiver.stop()
    assert receiver.received == []
    assert [code for code, _ in answers] == [None, None]
    assert all("certificate" in (error or "").lower() or "hostname" in (error or "").lower()
               for _, error in answers), answers
