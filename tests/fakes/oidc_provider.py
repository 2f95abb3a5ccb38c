"""A fake OpenID Connect provider shaped like Microsoft Entra ID, over real HTTP (aiohttp).

Per tenant (`/{tenant}/v2.0/...`, as Entra's URLs are): the discovery document, the authorize
endpoint (no login page: it signs in whoever `sign_in_as()` named and redirects back with a code,
checking client id, redirect URI, PKCE and the nonce), the token endpoint (code for an RS256 ID
token and access token; the client secret checked), the JWKS endpoint, and end-session (records
the call, then redirects to `post_logout_redirect_uri`). Keys rotate: `rotate()` signs with a new
key and, unless told to keep it, stops publishing the old one. `mint()` makes tokens with any
claims, a key the provider never published, another tenant's key or `alg: none`, for the bearer
tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from urllib.parse import urlencode

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .server import BackgroundServer

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "22222222-2222-2222-2222-222222222222"
CLIENT_ID = "ragsite-client"
CLIENT_SECRET = "ragsite-client-secret"
API_AUDIENCE = "api://ragsite"


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
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
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

    async def _jwks(self, request: web.Request) -> web.Response:
        keys = self.keys.get(request.match_info["tenant"], [])
        return web.json_response({"keys": [key.jwk() for key in keys]})

    async def _logout(self, request: web.Request) -> web.Response:
        self.logouts.append(dict(request.query))
        target = request.query.get("post_logout_redirect_uri")
        if target:
            raise web.HTTPFound(target)
        return web.Response(text="signed out")
