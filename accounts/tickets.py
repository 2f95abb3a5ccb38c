"""Websocket tickets: how a browser page that holds a bearer credential opens the chat socket.

A browser cannot set an Authorization header on a websocket handshake. The page posts its
credential to `POST /accounts/socket-ticket/` instead and opens `/ws/chat/?ticket=<ticket>`
within WS_TICKET_SECONDS (30 s by default). A ticket is `rst_` and 256 random bits; it works
once (redeeming deletes its row, and only the request whose delete removed it goes on), for
the user it was issued to, and the socket then carries the credential itself, so every turn
re-checks it as a bearer socket's turns do (a revoked key stops there too).

The row holds an HMAC of the ticket and the credential encrypted (Fernet) with a key derived
from the ticket: the database alone, a backup or a log of its rows, yields no credential, and
a URL that leaks after use yields nothing (the ticket is gone).
"""

import base64
import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from accounts.identity import InvalidCredential
from accounts.models import SocketTicket

TICKET_PATTERN = re.compile(r"rst_[A-Za-z0-9_-]{43}")
MAX_OUTSTANDING = 50  # unexpired tickets per user: a loop of requests cannot fill the table
BAD_TICKET = "The ticket is invalid, expired or already used."


class TooManyTickets(Exception):
    pass


def _derive(ticket: str, purpose: bytes) -> bytes:
    return hmac.new(ticket.encode(), purpose, hashlib.sha256).digest()


def _digest(ticket: str) -> str:
    return _derive(ticket, b"ragsite socket ticket v1: row").hex()


def _fernet(ticket: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive(ticket, b"ragsite socket ticket v1: seal")))


def issue(user: User, authorization: str) -> tuple[str, datetime]:
    """A new ticket for `user`, who proved themselves with `authorization` (the header as sent);
    (ticket, expiry). Blocking: database."""
    now = timezone.now()
    SocketTicket.objects.filter(expires_at__lte=now).delete()  # expired ones of everyone
    if SocketTicket.objects.filter(user=user).count() >= MAX_OUTSTANDING:
        raise TooManyTickets(f"At most {MAX_OUTSTANDING} unused tickets at a time.")
    ticket = "rst_" + secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=settings.WS_TICKET_SECONDS)
    SocketTicket.objects.create(
        digest=_digest(ticket),
        user=user,
        sealed=_fernet(ticket).encrypt(authorization.encode()).decode(),
        expires_at=expires_at,
    )
    return ticket, expires_at


def redeem(ticket: str) -> tuple[int, str]:
    """(user id, the Authorization header it was bought with) of a good ticket, which is then
    used up; InvalidCredential otherwise, the same for unknown, expired and used tickets.
    Blocking: database."""
    if not TICKET_PATTERN.fullmatch(ticket):
        raise InvalidCredential(BAD_TICKET)
    row = SocketTicket.objects.filter(digest=_digest(ticket)).first()
    # One delete wins: two handshakes racing with the same ticket cannot both go on.
    if row is None or SocketTicket.objects.filter(pk=row.pk).delete()[0] != 1:
        raise InvalidCredential(BAD_TICKET)
    if row.expires_at <= timezone.now():
        raise InvalidCredential(BAD_TICKET)
    try:
        authorization = _fernet(ticket).decrypt(row.sealed.encode()).decode()
    except InvalidToken:  # a row that was not made by issue() for this ticket
        raise InvalidCredential(BAD_TICKET) from None
    return row.user_id, authorization
