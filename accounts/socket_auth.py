"""Bearer credentials on the chat websocket's handshake (`Authorization: Bearer <key>`).

A socket that sends the header is authenticated by it alone: its cookies are ignored, and so is
the Origin check, which guards cookie sockets against foreign pages (a browser cannot add this
header to a websocket, and programs usually send no Origin). A bad, expired or revoked
credential is accepted and closed at once with CLOSE_INVALID_CREDENTIAL, before any frame is
read, so the client learns why; it is never served as anonymous. The consumer checks the
credential again on every turn (accounts/bearer.py, cached), so a revoked key stops there too.
"""

from accounts import bearer

CLOSE_INVALID_CREDENTIAL = 4401


def authorization_header(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            return value.decode("latin1")
    return None


class BearerSocketAuth:
    """Sockets with an Authorization header go to `app` as the credential's user; the others
    to `cookie_app` (the Origin check and Django's session authentication)."""

    def __init__(self, app, cookie_app):
        self.app = app
        self.cookie_app = cookie_app

    async def __call__(self, scope, receive, send):
        authorization = authorization_header(scope) if scope["type"] == "websocket" else None
        if authorization is None:
            return await self.cookie_app(scope, receive, send)
        try:
            identity = await bearer.authenticate(authorization)
        except bearer.InvalidCredential as exc:
            await close_unauthorized(receive, send, exc.description)
            return
        scope = dict(scope, user=identity.user, session=None, bearer=authorization)
        scope["access"] = identity.access
        return await self.app(scope, receive, send)


async def close_unauthorized(receive, send, reason: str) -> None:
    try:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send(
                {"type": "websocket.close", "code": CLOSE_INVALID_CREDENTIAL, "reason": reason}
            )
    except OSError:  # the client has gone already
        pass
