"""Which pages may open the chat websocket: the rule Django's CSRF check applies to a POST.

A browser sends the page's origin with every websocket handshake and lets any site open a socket
to any server, cookies included; the server has to refuse foreign pages itself. Accepted:

- the same origin: the Origin's scheme, host and port equal the request's (the Host header, or
  X-Forwarded-Host with USE_X_FORWARDED_HOST; https when the socket is wss or the configured
  SECURE_PROXY_SSL_HEADER says so), the host being one of ALLOWED_HOSTS;
- an origin listed in CSRF_TRUSTED_ORIGINS (scheme, host and port; `https://*.example.com`
  for subdomains), for a proxy that does not pass the Host on.

Everything else is refused before any consumer or channel-layer channel exists, including a
missing or `null` Origin (non-browser clients send the server's own origin). Default ports count:
`http://example.com` and `http://example.com:80` are the same origin.
"""

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain

from core.asgi_types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)
DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin like `https://chat.example.com:8443`, or None."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")
    if scheme not in DEFAULT_PORTS or not host or parts.username or parts.password:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


def _headers(scope: Scope) -> dict[bytes, str]:
    return {name.lower(): value.decode("latin1") for name, value in scope.get("headers", ())}


def _request_origin(scope: Scope, headers: dict[bytes, str]) -> tuple[str, str, int] | None:
    """The origin this request was made to, if its host is one this site serves."""
    secure = scope.get("scheme") in ("wss", "https")
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name, value = proxy_header
        forwarded = headers.get(name.removeprefix("HTTP_").replace("_", "-").lower().encode())
        if forwarded is not None:
            secure = forwarded.split(",")[0].strip() == value
    host = headers.get(b"host", "")
    if settings.USE_X_FORWARDED_HOST and b"x-forwarded-host" in headers:
        host = headers[b"x-forwarded-host"].split(",")[0].strip()
    domain, _ = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed:
        allowed = [".localhost", "127.0.0.1", "[::1]"]
    if not domain or not validate_host(domain, allowed):
        return None
    return _origin(f"{'https' if secure else 'http'}://{host}")


def _trusted(origin: tuple[str, str, int]) -> bool:
    scheme, host, port = origin
    for entry in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in entry
        trusted = _origin(entry.replace("://*.", "://", 1))
        if trusted is None or trusted[0] != scheme or trusted[2] != port:
            continue
        if trusted[1] == host or (wildcard and is_same_domain(host, "." + trusted[1])):
            return True
    return False


def origin_allowed(scope: Scope) -> bool:
    headers = _headers(scope)
    origin = _origin(headers.get(b"origin", ""))
    if origin is None:
        return False
    return origin == _request_origin(scope, headers) or _trusted(origin)


class SameOriginValidator:
    """ASGI middleware for the websocket router: foreign origins get a 403 at the handshake."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or origin_allowed(scope):
            return await self.app(scope, receive, send)
        await refuse(receive, send)


async def refuse(receive: Receive, send: Send, code: int = 1008) -> None:
    """Refuse the handshake (the server answers 403). A client that is already gone is no error:
    nothing to tell it."""
    try:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": code})
    except OSError:
        pass
