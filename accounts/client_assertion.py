"""The app's proof of identity at the provider's token endpoint with a certificate instead of a
client secret: an RFC 7523 client assertion (`private_key_jwt`), as Microsoft Entra ID's
certificate credential takes it.

OIDC_CLIENT_CERTIFICATE names a PEM file with the app's private key and its certificate (the
certificate, without the key, is what is uploaded to the app registration). Each token request
carries a fresh JWT signed RS256 with the key: header `x5t` (the certificate's SHA-1
thumbprint, by which Entra finds the registered certificate) and `kid` (the same), claims
`aud` the token endpoint, `iss` and `sub` the client id, `jti` random, `iat`/`nbf` now and
`exp` five minutes later. The key never leaves this host, and a captured assertion is good
for one token request at most, for minutes.
"""

import base64
import threading
import time
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LIFETIME_SECONDS = 300
_lock = threading.Lock()


class CertificateError(ValueError):
    """The configured certificate file cannot be used; the message says why."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@cache
def _load(path: str, password: str) -> tuple[rsa.RSAPrivateKey, str]:
    """(private key, x5t) of a PEM file holding both; read once per process."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise CertificateError(f"cannot read {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(pem, password.encode() or None)
    except (ValueError, TypeError) as exc:
        raise CertificateError(f"{path} holds no usable private key ({exc})") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise CertificateError(f"{path}: the private key must be RSA (the provider wants RS256)")
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise CertificateError(f"{path} holds no certificate next to its key") from None
    if certificate.public_key() != key.public_key():
        raise CertificateError(f"{path}: the certificate is not the private key's")
    # x5t is SHA-1 by definition (RFC 7515); it names the certificate, it protects nothing.
    return key, _b64url(certificate.fingerprint(hashes.SHA1()))


def load_configured() -> tuple[rsa.RSAPrivateKey, str]:
    """The configured key and thumbprint; CertificateError with the reason otherwise."""
    with _lock:
        return _load(settings.OIDC_CLIENT_CERTIFICATE, settings.OIDC_CLIENT_CERTIFICATE_PASSWORD)


def assertion(token_endpoint: str) -> str:
    """A fresh signed client assertion for one request to `token_endpoint`."""
    key, x5t = load_configured()
    now = int(time.time())
    claims = {
        "aud": token_endpoint,
        "iss": settings.OIDC_CLIENT_ID,
        "sub": settings.OIDC_CLIENT_ID,
        "jti": str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + LIFETIME_SECONDS,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"x5t": x5t, "kid": x5t})


def authenticate_payload(payload: dict[str, Any], token_endpoint: str) -> dict[str, Any]:
    """A token request's form with the assertion in place of the client secret."""
    payload = {k: v for k, v in payload.items() if k != "client_secret"}
    payload["client_assertion_type"] = ASSERTION_TYPE
    payload["client_assertion"] = assertion(token_endpoint)
    return payload


def forget() -> None:
    """Read the certificate file again at the next use (tests; a renewed certificate)."""
    with _lock:
        _load.cache_clear()
