"""A fake OpenID Connect provider shaped like Microsoft Entra ID, over real HTTP (aiohttp).

Per tenant (`/{tenant}/v2.0/...`, as Entra's URLs are): the discovery document, the authorize
endpoint (no login page: it signs in whoever `sign_in_as()` named and redirects back with a code,
checking client id, redirect URI, PKCE and the nonce), the token endpoint (code for an RS256 ID
token and access token; the client proves itself with the secret or, as Entra's certificate
credential, with a client assertion verified in full: `x5t` names a registered certificate, the
RS256 signature is its key's, `aud` is this token endpoint, `iss` and `sub` the client id, `exp`
in the future and at most ten minutes away, `jti` never seen before), the JWKS endpoint, and
end-session (records
the call, then redirects to `post_logout_redirect_uri`). Keys rotate: `rotate()` signs with a new
key and, unless told to keep it, stops publishing the old one. `mint()` makes tokens with any
claims, a key the provider never published, another tenant's key or `alg: none`, for the bearer
tests.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import secrets
import time
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

from .server import BackgroundServer

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "22222222-2222-2222-2222-222222222222"
CLIENT_ID = "ragsite-client"
CLIENT_SECRET = "ragsite-client-secret"
API_AUDIENCE = "api://ragsite"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_SECONDS = 600


def client_certificate(common_name: str = "ragsite") -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed certificate and its key, as `az ad app credential reset --create-cert` or
    a CA would give an app."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def pem(key: rsa.RSAPrivateKey, certificate: x509.Certificate | None = None) -> bytes:
    """The key (unencrypted PKCS#8) and the certificate, one PEM file."""
    out = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if certificate is not None:
        out += certificate.public_bytes(serialization.Encoding.PEM)
    return out


def thumbprint(certificate: x509.Certificate) -> str:
    """x5t: the certificate's SHA-1 thumbprint, base64url."""
    return base64.urlsafe_b64encode(certificate.fingerprint(hashes.SHA1())).rstrip(b"=").decode()


class SigningKey:
    def __init__(self):
        self.kid = secrets.token_hex(8)
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "use": "sig", "alg": "RS256"}


class FakeOpenIDProvider(BackgroundServer):
    thread_name = "fake-oidc"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.keys = {TENANT: [SigningKey()], OTHER_TENANT: [SigningKey()]}
        self.user: dict = {}
        self.codes: dict[str, dict] = {}
        self.logouts: list[dict] = []
        self.token_lifetime = 3600
        # How the app proves itself: the secret (None: a certificate-only registration) and
        # the certificates uploaded to its registration.
        self.client_secret: str | None = CLIENT_SECRET
        self.client_certificates: list[x509.Certificate] = []
        self.seen_jti: set[str] = set()
        self.client_auth: list[str] = []  # per token request: "secret", "assertion" or the error

    def token_endpoint(self, tenant: str = TENANT) -> str:
        return f"{self.base_url}/{tenant}/oauth2/v2.0/token"

    # -- for tests ------------------------------------------------------------------------------

    def issuer(self, tenant: str = TENANT) -> str:
        return f"{self.base_url}/{tenant}/v2.0"

    def discovery_url(self, tenant: str = TENANT) -> str:
        return f"{self.issuer(tenant)}/.well-known/openid-configuration"

    def sign_in_as(self, **claims) -> None:
        """Who the authorize endpoint signs in next: `sub`, `preferred_username`, `groups`..."""
        self.user = claims

    def rotate(self, tenant: str = TENANT, keep_old: bool = False) -> None:
        keys = self.keys[tenant]
        keys.insert(0, SigningKey())
        if not keep_old:
            del keys[1:]

    def mint(
        self,
        claims: dict | None = None,
        *,
        tenant: str = TENANT,
        key=None,
        alg="RS256",
        audience: str = API_AUDIENCE,
        lifetime: int | None = None,
        **header,
    ) -> str:
        """A token as this provider would issue it for `audience`, or a bad one: `key` a
        SigningKey it never published, `tenant` another tenant's, `alg` "none"."""
        now = int(time.time())
        body = {
            "iss": self.issuer(tenant),
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + (self.token_lifetime if lifetime is None else lifetime),
            "tid": tenant,
            **(claims or {}),
        }
        if alg == "none":
            encoded = [
                base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()
                for part in ({"alg": "none", "typ": "JWT", **header}, body)
            ]
            return ".".join(encoded) + "."
        key = key or self.keys[tenant][0]
        return jwt.encode(body, key.private, algorithm=alg, headers={"kid": key.kid, **header})

    # -- the endpoints --------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/{tenant}/oauth2/v2.0/authorize", self._authorize)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        app.router.add_get("/{tenant}/discovery/v2.0/keys", self._jwks)
        app.router.add_get("/{tenant}/oauth2/v2.0/logout", self._logout)
        return app

    async def _discovery(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        base = f"{self.base_url}/{tenant}"
        return web.json_response(
            {
                "issuer": self.issuer(tenant),
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "response_types_supported": ["code"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return web.json_response({"error": "unauthorized_client"}, status=400)
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.json_response({"error": "invalid_request", "pkce": "required"}, status=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "tenant": request.match_info["tenant"],
            "claims": dict(self.user),
            "nonce": q.get("nonce"),
            "redirect_uri": q["redirect_uri"],
            "challenge": q["code_challenge"],
            "scope": q.get("scope", ""),
        }
        target = f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}"
        raise web.HTTPFound(target)

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = self.codes.pop(form.get("code", ""), None)
        refused = self._client_refused(form, self.token_endpoint(request.match_info["tenant"]))
        self.client_auth.append(
            refused or ("assertion" if "client_assertion" in form else "secret")
        )
        if refused:
            return web.json_response({"error": "invalid_client", "why": refused}, status=401)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return web.json_response({"error": "invalid_grant"}, status=400)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.rstrip(b"=").decode() != grant["challenge"]:
            return web.json_response({"error": "invalid_grant", "pkce": "mismatch"}, status=400)
        claims = {**grant["claims"], "nonce": grant["nonce"]}
        id_token = self.mint(claims, tenant=grant["tenant"], audience=CLIENT_ID)
        access = self.mint(grant["claims"], tenant=grant["tenant"], audience=API_AUDIENCE)
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "id_token": id_token,
                "access_token": access,
                "scope": grant["scope"],
            }
        )

    def _client_refused(self, form, token_endpoint: str) -> str | None:
        """Why the client's authentication fails, or None."""
        if form.get("client_id") != CLIENT_ID:
            return "unknown client"
        assertion = form.get("client_assertion")
        if assertion is None:
            if self.client_secret is None or form.get("client_secret") != self.client_secret:
                return "bad secret"
            return None
        if "client_secret" in form:
            return "two ways of authentication"
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            return "bad client_assertion_type"
        try:
            x5t = jwt.get_unverified_header(assertion).get("x5t")
            certificate = next((c for c in self.client_certificates if thumbprint(c) == x5t), None)
            if certificate is None:
                return "unknown certificate"
            claims = jwt.decode(
                assertion,
                certificate.public_key(),
                algorithms=["RS256"],
                audience=token_endpoint,
                issuer=CLIENT_ID,
                options={"require": ["aud", "iss", "sub", "exp", "jti"]},
            )
        except jwt.PyJWTError as exc:
            return f"bad assertion: {exc}"
        if claims["sub"] != CLIENT_ID:
            return "bad assertion: sub is not the client id"
        if claims["exp"] - time.time() > MAX_ASSERTION_SECONDS:
            return "bad assertion: lives too long"
        if claims["jti"] in self.seen_jti:
            return "bad assertion: replayed"
        self.seen_jti.add(claims["jti"])
        return None

    async def _jwks(self, request: web.Request) -> web.Response:
        keys = self.keys.get(request.match_info["tenant"], [])
        return web.json_response({"keys": [key.jwk() for key in keys]})

    async def _logout(self, request: web.Request) -> web.Response:
        self.logouts.append(dict(request.query))
        target = request.query.get("post_logout_redirect_uri")
        if target:
            raise web.HTTPFound(target)
        return web.Response(text="signed out")
