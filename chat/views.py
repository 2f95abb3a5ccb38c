"""Server-rendered pages: the chat page and its conversations, feedback."""

import logging
import time
import uuid

import limits
from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from chat.limits import caller_for, chat_limits
from chat.models import Conversation, Feedback, Message
from chat.pipeline import cited_documents, visible_context
from chat.protocol import decode
from chat.render import render_answer
from core.client_address import request_client_address
from core.responses import csrf_failure, json_error, private
from knowledge.access import access_for, readable_documents

log = logging.getLogger(__name__)


async def page(request):
    # No session is created here: an anonymous visitor's first question starts their
    # conversation, and a cookieless GET must not cost a session row.
    user = request.user = await request.auser()  # templates read request.user
    conversations, current, messages = [], None, []
    if user.is_authenticated:
        conversations = [c async for c in Conversation.objects.filter(owner=user)[:30]]
    wanted = request.GET.get("c")
    if wanted:
        try:
            current = await Conversation.objects.filter(pk=uuid.UUID(wanted)).afirst()
        except ValueError:
            current = None
        if current is None or not current.belongs_to(user, request.session.session_key):
            raise Http404("No such conversation.")
        messages = await _stored_messages(current, user)
    return private(
        render(
            request,
            "chat/page.html",
            {
                "conversations": conversations,
                "current": current,
                "initial_messages": messages,
                "anonymous_allowed": settings.CHAT_ALLOW_ANONYMOUS,
                "chat_user": user,
            },
        )
    )


async def _stored_messages(conversation, user) -> list[dict]:
    """The conversation's messages; their passages filtered by what the user may read now."""
    stored = [m async for m in conversation.messages.order_by("pk")]
    access = await access_for(user)
    cited = set().union(*(cited_documents(m.context) for m in stored))
    readable = set(await sync_to_async(readable_documents)(access, cited)) if cited else set()
    messages = []
    for m in stored:
        context = visible_context(m.context, readable, staff=access.all)
        sources = context.get("data_points", {}).get("sources", [])
        assistant = m.role == Message.Role.ASSISTANT
        messages.append(
            {
                "id": m.pk,
                "role": m.role,
                "content": m.content,
                "interrupted": m.interrupted,
                "error": m.error,
                "reasoning": m.reasoning,
                "context": context,
                "answer_html": render_answer(m.content, sources) if assistant else "",
            }
        )
    return messages


async def _feedback_refused(user, address: str | None):
    """The 429 for a caller over the feedback rate, else None (and None when the limit store
    is down: feedback is not worth refusing everyone for)."""
    rate = settings.CHAT_FEEDBACK_RATE_LIMIT
    if not rate:
        return None
    item = limits.parse(rate)
    key = caller_for(user, address).key
    limiter = chat_limits.get().limiter
    try:
        if await limiter.hit(item, "feedback", key):
            return None
        stats = await limiter.get_window_stats(item, "feedback", key)
    except Exception as exc:
        log.warning("rate limit store unavailable, not limiting feedback: %r", exc)
        return None
    wait = max(1.0, stats.reset_time - time.time())
    return json_error(
        f"Too much feedback. Please wait {round(wait)} seconds and try again.", 429, wait
    )


@csrf_exempt  # checked below as the chat API does: JSON errors, and programs need no token
@require_POST
async def feedback(request):
    """Thumbs up or down (and a comment) on an answer the caller received."""
    user = request.user = await request.auser()  # templates read request.user
    if user.is_authenticated and csrf_failure(request) is not None:
        return json_error("CSRF check failed: reload the page and try again.", 403)
    refused = await _feedback_refused(user, request_client_address(request))
    if refused is not None:
        return refused
    try:
        data = decode(request.body)
        message_id = int(data["message_id"])
        helpful = data["helpful"]
        comment = data.get("comment", "")
        if not isinstance(helpful, bool) or not isinstance(comment, str):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return json_error('Send {"message_id": int, "helpful": true|false, "comment": str}.', 400)
    if len(comment) > 2000:
        return json_error("The comment is too long (at most 2000 characters).", 413)
    message = (
        await Message.objects.select_related("conversation")
        .filter(pk=message_id, role=Message.Role.ASSISTANT)
        .afirst()
    )
    if message is None or not message.conversation.belongs_to(user, request.session.session_key):
        return json_error("No such answer.", 404)
    await Feedback.objects.acreate(
        message=message,
        user=user if user.is_authenticated else None,
        session_key="" if user.is_authenticated else (request.session.session_key or ""),
        helpful=helpful,
        comment=comment,
    )
    return JsonResponse({"ok": True})
