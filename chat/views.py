"""Server-rendered pages: the chat page, a cited passage inside its document, feedback."""

import uuid

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from chat.api import json_error
from chat.models import Conversation, Feedback, Message
from chat.protocol import decode
from chat.render import render_answer
from knowledge.access import access_for, can_read
from knowledge.models import Document


async def page(request):
    user = request.user = await request.auser()  # templates read request.user
    if not user.is_authenticated and not request.session.session_key:
        # Anonymous conversations belong to the browser's session: make sure it has one.
        await sync_to_async(request.session.save)()
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
        messages = [
            {
                "id": m.pk,
                "role": m.role,
                "content": m.content,
                "interrupted": m.interrupted,
                "error": m.error,
                "context": m.context,
                "answer_html": render_answer(
                    m.content, (m.context or {}).get("data_points", {}).get("sources", [])
                )
                if m.role == Message.Role.ASSISTANT
                else "",
            }
            async for m in current.messages.order_by("pk")
        ]
    return render(
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


async def source(request, document_id: int):
    """A document with the cited passage highlighted; 404 for what the user may not read."""
    user = request.user = await request.auser()  # templates read request.user
    access = await access_for(user)
    doc = (
        await Document.objects.select_related("collection")
        .filter(pk=document_id, published=True)
        .afirst()
    )
    if doc is None:
        raise Http404("No such document.")
    group_ids = [pk async for pk in doc.groups.values_list("pk", flat=True)]
    if not can_read(access, group_ids):
        raise Http404("No such document.")
    try:
        highlight = int(request.GET.get("chunk", ""))
    except ValueError:
        highlight = None
    chunks = [c async for c in doc.chunks.order_by("ordinal")]
    return render(
        request,
        "chat/source.html",
        {"document": doc, "chunks": chunks, "highlight": highlight},
    )


@require_POST
async def feedback(request):
    """Thumbs up or down (and a comment) on an answer the caller received."""
    user = request.user = await request.auser()  # templates read request.user
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
