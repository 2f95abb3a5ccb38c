"""Bearer credentials on the chat websocket's handshake (`Authorization: Bearer <key>`).

A socket that sends the header is authenticated by it alone: its cookies are ignored, and so is
the Origin check, which guards cookie sockets against foreign pages (a browser cannot add this
header to a websocket, and programs usually send no Origin). A bad, expired or revoked
credential is accepted and closed at once with CLOSE_INVALID_CREDENTIAL, before any frame is
read, so the client learns why; it is never served as anonymous. The consumer checks the
credential again on every turn (accounts/bearer.py, cached), so a revoked key stops there too.

A browser cannot send that header: it opens `/ws/chat/?ticket=...` with a ticket bought over
HTTP (accounts/tickets.py). Such a socket passes the Origin check as a cookie socket does (it
comes from a page), then becomes the ticket's bearer socket.
"""

from collections.abc import Iterable
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

from accounts import bearer, tickets
from accounts.identity import Identity, InvalidCredential
from core.asgi_types import ASGIApp, Receive, Scope, Send
from core.db import release_db

CLOSE_INVALID_CREDENTIAL = 4401


def authorization_header(scope: Scope) -> str | None:
    headers: Iterable[tuple[bytes, bytes]] = scope.get("headers", ())
    for name, value in headers:
        if name.lower() == b"authorization":
            return value.decode("latin1")
    return None


class BearerSocketAuth:
    """Sockets with an Authorization header go to `app` as the credential's user; the others
    to `cookie_app` (the Origin check and Django's session authentication)."""

    def __init__(self, app: ASGIApp, cookie_app: ASGIApp) -> None:
        self.app = app
        self.cookie_app = cookie_app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = authorization_header(scope) if scope["type"] == "websocket" else None
        if authorization is None:
            return await self.cookie_app(scope, receive, send)
        try:
            identity = await bearer.authenticate(authorization)
        except InvalidCredential as exc:
            await close_unauthorized(receive, send, exc.description)
            return
        return await self.app(_as_bearer(scope, identity, authorization), receive, send)


class TicketSocketAuth:
    """Sockets opened with `?ticket=`: the ticket is redeemed (used up) and the socket goes on
    as a bearer socket of the credential it was bought with. It sits inside the cookie stack,
    after the Origin check and the session look-up: a foreign page is refused before a ticket is
    spent, and a browser signed in here as someone else than the ticket's user is refused (a
    page must not slip its visitors into another account's conversations)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ticket = ticket_of(scope)
        if ticket is None:
            return await self.app(scope, receive, send)
        try:
            identity, authorization = await _redeem(ticket, scope.get("user"))
        except InvalidCredential as exc:
            await close_unauthorized(receive, send, exc.description)
            return
        return await self.app(_as_bearer(scope, identity, authorization), receive, send)


def _as_bearer(scope: Scope, identity: Identity, authorization: str) -> Scope:
    """The socket's scope as the credential's: its user and rights, no session."""
    return dict(
        scope, user=identity.user, session=None, bearer=authorization, access=identity.access
    )


def ticket_of(scope: Scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin1"), keep_blank_values=True)
    values = query.get("ticket")
    return values[-1] if values else None


async def _redeem(
    ticket: str, signed_in: AbstractBaseUser | AnonymousUser | None
) -> tuple[Identity, str]:
    user_id, authorization = await sync_to_async(_redeem_sync, thread_sensitive=False)(ticket)
    identity = await bearer.authenticate(authorization)  # still good now, as on every turn
    if identity.user.pk != user_id:
        raise InvalidCredential(tickets.BAD_TICKET)
    if signed_in is not None and signed_in.is_authenticated and signed_in.pk != user_id:
        raise InvalidCredential("The ticket belongs to another user than the one signed in.")
    return identity, authorization


def _redeem_sync(ticket: str) -> tuple[int, str]:
    try:
        return tickets.redeem(ticket)
    finally:
        release_db()


async def close_unauthorized(receive: Receive, send: Send, reason: str) -> None:
    try:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send(
                {"type": "websocket.close", "code": CLOSE_INVALID_CREDENTIAL, "reason": reason}
            )
    except OSError:  # the client has gone already
        pass
