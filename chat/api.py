"""The HTTP chat API: POST /chat (one JSON object) and POST /chat/stream (JSON Lines)."""

import logging
from contextlib import aclosing
from importlib import import_module

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse, StreamingHttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from chat import pipeline
from chat.limits import LimitExceeded, admit
from chat.llm.base import AnswerError
from chat.protocol import ProtocolError, encode, parse_body, parse_request
from knowledge.access import access_for_sync
from ragsite.db import release_db
from ragsite.middleware import MESSAGE, is_outage

log = logging.getLogger(__name__)


def json_error(message: str, status: int, retry_after: float | None = None) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    if retry_after:
        response["Retry-After"] = str(max(1, round(retry_after)))
    return response


def _csrf_failure(request):
    """A logged-in session is ambient authority, so it must prove it comes from our page.
    Anonymous callers carry none, so programs may post without a token (PROTOCOL.md)."""
    check = CsrfViewMiddleware(lambda r: None)
    return check.process_view(request, None, (), {})


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
    """Session and user for the lean chat handler (ragsite/chat_handler.py), which runs no
    middleware: one sync call on the shared executor instead of a thread per request."""
    request.session = _session(request)
    try:
        user = get_user(request)
        return user, access_for_sync(user)
    finally:
        release_db()


def _session(request):
    return import_module(settings.SESSION_ENGINE).SessionStore(
        request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    )


async def _caller(request):
    """(user, access) of the request; programs without a session cookie cost no database call."""
    if settings.SESSION_COOKIE_NAME not in request.COOKIES:
        request.session = _session(request)
        return AnonymousUser(), None
    return await sync_to_async(_identify, thread_sensitive=False)(request)


async def _start_turn(request):
    """Validate, authorise and prepare; returns (turn, None) or (None, error response)."""
    if request.method != "POST":
        return None, json_error("Use POST with a JSON body.", 405)
    try:
        user, access = await _caller(request)
    except Exception as exc:
        if not is_outage(exc):
            raise
        return None, json_error(MESSAGE, 503, retry_after=5)
    if user.is_authenticated and _csrf_failure(request) is not None:
        return None, json_error("CSRF check failed: reload the page and try again.", 403)
    if not user.is_authenticated and not settings.CHAT_ALLOW_ANONYMOUS:
        return None, json_error("Please log in to chat.", 401)
    try:
        slot = await admit(user, request.META.get("REMOTE_ADDR"))
    except LimitExceeded as exc:
        return None, json_error(exc.message, 429, exc.retry_after)
    try:
        chat_request = parse_request(parse_body(_read_body(request)))
        turn = await pipeline.prepare(
            chat_request, user, request.session.session_key, access=access
        )
    except ProtocolError as exc:
        error = json_error(exc.message, exc.status)
    except AnswerError as exc:
        error = json_error(exc.message, exc.status, exc.retry_after)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("database unavailable: %r", exc)
        error = json_error(MESSAGE, 503, retry_after=5)
    else:
        turn.slot = slot
        return turn, None
    await slot.release()
    return None, error


@csrf_exempt
async def chat(request):
    turn, error = await _start_turn(request)
    if error is not None:
        return error
    try:
        result = await pipeline.run_to_completion(turn)
    finally:
        await turn.slot.release()
    error_message = result.pop("error")
    if error_message and not result["output_text"]:
        return json_error(error_message, 502)
    return JsonResponse(result)


@csrf_exempt
async def chat_stream(request):
    turn, error = await _start_turn(request)
    if error is not None:
        return error

    async def lines():
        async with aclosing(pipeline.stream(turn)) as events:
            try:
                async for event in events:
                    yield encode(event)
            except Exception:
                log.exception("chat stream failed")
                yield encode({"error": "Something went wrong while answering. Please try again."})
            finally:
                await turn.slot.release()

    response = StreamingHttpResponse(lines(), content_type="application/x-ndjson")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # tell proxies not to buffer the stream
    return response
