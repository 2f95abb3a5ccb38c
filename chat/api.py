"""The HTTP chat API: POST /chat (one JSON object) and POST /chat/stream (JSON Lines)."""

import asyncio
import logging
from contextlib import aclosing
from importlib import import_module

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts import bearer
from chat import pipeline
from chat.limits import LimitExceeded, admit
from chat.llm.base import AnswerError
from chat.protocol import ProtocolError, encode, parse_body, parse_request
from core import log_context
from core.client_address import request_client_address
from core.db import release_db
from core.outage import MESSAGE, is_outage
from core.responses import csrf_failure, json_error, private
from knowledge.access import access_for_sync

log = logging.getLogger(__name__)
SOMETHING_WENT_WRONG = "Something went wrong while answering. Please try again."


def unauthorized(exc: bearer.InvalidCredential) -> JsonResponse:
    response = json_error(exc.description, 401)
    response["WWW-Authenticate"] = exc.www_authenticate
    return response


def _read_body(request) -> bytes:
    """The body, refused by its declared length before Django buffers all of it."""
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        raise ProtocolError("The Content-Length header is not a number.") from None
    if declared > settings.CHAT_MAX_BODY_BYTES:
        raise ProtocolError(
            f"The request is too large ({declared} bytes; at most {settings.CHAT_MAX_BODY_BYTES}).",
            413,
        )
    try:
        return request.body
    except RequestDataTooBig:
        raise ProtocolError("The request is too large.", 413) from None


def _identify(request):
    """Session and user for the lean chat handler (chat/api_handler.py), which runs no
    middleware: one sync call on the shared executor instead of a thread per request."""
    request.session = _session(request)
    try:
        user = get_user(request)
        return user, access_for_sync(user)
    finally:
        release_db()


def _session(request):
    return _session_of(request.COOKIES.get(settings.SESSION_COOKIE_NAME))


def _session_of(session_key: str | None):
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key)


def _start_browser_session(request) -> None:
    try:
        request.session.save()
    finally:
        release_db()


async def _bind_browser(request, user) -> None:
    """An anonymous browser that loaded the page (it holds the CSRF cookie the page sets) but has
    no session yet gets one now, so the conversation it starts belongs to it alone. The page
    itself creates no session row; programs (no CSRF cookie) stay sessionless."""
    if (
        user.is_authenticated
        or request.session.session_key
        or settings.CSRF_COOKIE_NAME not in request.COOKIES
    ):
        return
    await sync_to_async(_start_browser_session, thread_sensitive=False)(request)
    request.new_session_cookie = True


def _with_session_cookie(request, response):
    """What SessionMiddleware would set, for a session this handler created."""
    if getattr(request, "new_session_cookie", False):
        response.set_cookie(
            settings.SESSION_COOKIE_NAME,
            request.session.session_key,
            max_age=request.session.get_expiry_age(),
            domain=settings.SESSION_COOKIE_DOMAIN,
            path=settings.SESSION_COOKIE_PATH,
            secure=settings.SESSION_COOKIE_SECURE or None,
            httponly=settings.SESSION_COOKIE_HTTPONLY or None,
            samesite=settings.SESSION_COOKIE_SAMESITE,
        )
    return response


async def _caller(request):
    """(user, access, by_bearer) of the request. A bearer credential decides alone (cookies are
    ignored) and is looked up in a cache (accounts/bearer.py); programs without a session cookie
    cost no database call."""
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        identity = await bearer.authenticate(authorization)
        request.session = _session_of(None)
        return identity.user, identity.access, True
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        request.session = _session(request)
        return AnonymousUser(), None, False
    user, access = await sync_to_async(_identify, thread_sensitive=False)(request)
    return user, access, False


def _json_content_type(request) -> bool:
    """A chat request is JSON (no Content-Type at all is taken as JSON). Anything else is
    refused before the body is parsed: Django's form and multipart parsers, which the CSRF check
    runs for a logged-in caller, answer bad input with an HTML page."""
    media_type = request.content_type or ""
    return media_type in ("", "application/json") or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def _start_turn(request):
    """Validate, authorise and prepare; returns (turn, None) or (None, error response). The
    turn holds the caller's stream slot (`turn.slot`), and the slot holds the turn: releasing
    the slot ends the turn first (its upstream stream closed, its answer row written)."""
    if request.method != "POST":
        return None, json_error("Use POST with a JSON body.", 405)
    if not _json_content_type(request):
        return None, json_error(
            "Send the chat request as JSON (Content-Type: application/json).", 415
        )
    try:
        user, access, by_bearer = await _caller(request)
    except bearer.InvalidCredential as exc:
        return None, unauthorized(exc)
    except Exception as exc:
        if not is_outage(exc):
            raise
        return None, json_error(MESSAGE, 503, retry_after=5)
    # A bearer credential is no ambient authority: a browser never adds it on its own.
    if user.is_authenticated and not by_bearer and csrf_failure(request) is not None:
        return None, json_error("CSRF check failed: reload the page and try again.", 403)
    if not user.is_authenticated and not settings.CHAT_ALLOW_ANONYMOUS:
        response = json_error("Please log in to chat.", 401)
        response["WWW-Authenticate"] = 'Bearer realm="ragsite"'
        return None, response
    try:
        slot = await admit(user, request_client_address(request))
    except LimitExceeded as exc:
        return None, json_error(exc.message, 429, exc.retry_after)
    handed_over = False
    try:
        chat_request = parse_request(parse_body(_read_body(request)))
        if chat_request.session_state is None:
            await _bind_browser(request, user)
        turn = await pipeline.prepare(
            chat_request, user, request.session.session_key, access=access
        )
        turn.slot = slot
        slot.hold(turn)
        handed_over = True
        return turn, None
    except ProtocolError as exc:
        return None, json_error(exc.message, exc.status)
    except AnswerError as exc:
        return None, json_error(exc.message, exc.status, exc.retry_after)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("database unavailable: %r", exc)
        return None, json_error(MESSAGE, 503, retry_after=5)
    finally:
        # Every other way out, a client that left (cancellation) included, frees the slot here.
        if not handed_over:
            await slot.release()


@csrf_exempt
async def chat(request):
    log_context.bind(channel="http")
    turn, error = await _start_turn(request)
    if error is not None:
        return private(error)
    try:
        result = await pipeline.run_to_completion(turn)
    except Exception:
        # What the stream's last line says for it, as JSON rather than Django's HTML page.
        log.exception("chat answer failed")
        return private(json_error(SOMETHING_WENT_WRONG, 500))
    finally:
        await turn.slot.release()
    error_message = result.pop("error")
    if error_message and not result["output_text"]:
        return private(json_error(error_message, 502))
    if error_message:  # the answer broke off: what was produced, and why it stops there
        result["error"] = error_message
    return _with_session_cookie(request, private(JsonResponse(result)))


class TurnStreamingResponse(StreamingHttpResponse):
    """The streamed answer, holding the caller's stream slot and the turn for as long as the
    response lives. Whoever serves it releases them when it ends, however it ends: the iterator's
    own end, `aclose()` from the chat handler (chat/api_handler.py) for a client that left
    before the iterator started, or Django's `close()` when served through its own handler."""

    def __init__(self, turn, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.slot = turn.slot
        self._loop = asyncio.get_running_loop()

    async def aclose(self) -> None:
        await self.slot.release()

    def close(self) -> None:
        super().close()
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.slot.release_soon)


async def _lines(turn):
    try:
        async with aclosing(pipeline.stream(turn)) as events:
            try:
                async for event in events:
                    yield encode(event)
            except Exception:
                log.exception("chat stream failed")
                yield encode({"error": SOMETHING_WENT_WRONG})
    finally:
        await turn.slot.release()


@csrf_exempt
async def chat_stream(request):
    log_context.bind(channel="http-stream")
    turn, error = await _start_turn(request)
    if error is not None:
        return private(error)
    response = TurnStreamingResponse(turn, _lines(turn), content_type="application/x-ndjson")
    private(response)
    response["X-Accel-Buffering"] = "no"  # tell proxies not to buffer the stream
    return _with_session_cookie(request, response)
