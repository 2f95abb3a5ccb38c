"""The chat turn's database writes, group-committed (core/group_commit.py): the questions and
answers of concurrent chats go to the database together, in one transaction and two or three
statements, whatever their number.

A conversation's updated_at moves when a question arrives (a new conversation is inserted with
it; a continued one is touched), not again when its answer is stored a second later.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from chat.models import Conversation, Message
from chat.protocol import ChatRequest, ProtocolError
from core.db import release_db
from core.group_commit import per_loop
from knowledge.models import Collection

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


@dataclass
class Question:
    request: ChatRequest
    user: User | AnonymousUser | None
    session_key: str | None


@dataclass
class Answer:
    """The assistant message's fields (conversation_id, content, context, ...)."""

    fields: dict


History = Sequence[Mapping[str, Any]]


def _conversation_for(question: Question) -> tuple[Conversation, History, list[dict]]:
    """The conversation (new and unsaved, or loaded and checked), its history and the new
    messages to store."""
    request, user = question.request, question.user
    collection = request.overrides.collection
    if collection and not Collection.objects.filter(slug=collection).exists():
        raise ProtocolError(f"There is no collection {collection!r}.")
    if request.session_state is not None:
        conversation = Conversation.objects.filter(pk=request.session_state).first()
        if conversation is None or not conversation.belongs_to(user, question.session_key):
            raise ProtocolError("That conversation does not exist or is not yours.", 404)
        history = list(
            conversation.messages.filter(error="").values("role", "content").order_by("pk")
        )
        return conversation, history, [request.messages[-1]]
    owner = user if user is not None and user.is_authenticated else None
    conversation = Conversation(
        owner=owner,
        session_key="" if owner else (question.session_key or ""),
        title=" ".join(request.question.split())[:80],
    )
    return conversation, list(request.messages[:-1]), list(request.messages)


def store_turns(items: list[Question | Answer]) -> list:
    """Per Question: (conversation id, history), or the ProtocolError that refused it. Per
    Answer: the new message's id. (A chat's answer always comes in a later batch than its
    question: it is submitted once the question is stored.)"""
    results: list[Message | ProtocolError | tuple[uuid.UUID, History]] = []
    started: list[Conversation] = []
    continued: list[uuid.UUID] = []
    messages: list[Message] = []
    try:
        with transaction.atomic():
            for item in items:
                if isinstance(item, Answer):
                    message = Message(role=Message.Role.ASSISTANT, **item.fields)
                    messages.append(message)
                    results.append(message)  # its id once inserted
                    continue
                try:
                    conversation, history, new = _conversation_for(item)
                except ProtocolError as exc:
                    results.append(exc)
                    continue
                if conversation._state.adding:
                    started.append(conversation)
                else:
                    continued.append(conversation.pk)
                messages += [Message(conversation=conversation, **m) for m in new]
                results.append((conversation.pk, history))
            Conversation.objects.bulk_create(started)
            if continued:
                Conversation.objects.filter(pk__in=continued).update(updated_at=timezone.now())
            Message.objects.bulk_create(messages)
        return [r.pk if isinstance(r, Message) else r for r in results]
    finally:
        release_db()


turns = per_loop(store_turns)
