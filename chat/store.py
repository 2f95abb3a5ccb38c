"""The chat turn's database writes, group-committed (ragsite/group_commit.py): the questions of
concurrent chats go in one transaction, their answers in another."""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from chat.models import Conversation, Message
from chat.protocol import ChatRequest, ProtocolError
from knowledge.models import Collection
from ragsite.db import release_db
from ragsite.group_commit import per_loop


@dataclass
class Question:
    request: ChatRequest
    user: object
    session_key: str | None


def _conversation_for(question: Question) -> tuple[Conversation, list[dict], list[dict]]:
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


def store_questions(questions: list[Question]) -> list:
    """Per question: (conversation id, history), or the ProtocolError that refused it."""
    results, started, messages = [], [], []
    try:
        with transaction.atomic():
            for question in questions:
                try:
                    conversation, history, new = _conversation_for(question)
                except ProtocolError as exc:
                    results.append(exc)
                    continue
                if conversation._state.adding:
                    started.append(conversation)
                messages += [Message(conversation=conversation, **m) for m in new]
                results.append((conversation.pk, history))
            Conversation.objects.bulk_create(started)
            Message.objects.bulk_create(messages)
        return results
    finally:
        release_db()


def store_answers(answers: list[dict]) -> list[int]:
    """Per answer (Message fields): the new message's id."""
    try:
        with transaction.atomic():
            messages = Message.objects.bulk_create(
                [Message(role=Message.Role.ASSISTANT, **fields) for fields in answers]
            )
            touched = {fields["conversation_id"] for fields in answers}
            Conversation.objects.filter(pk__in=touched).update(updated_at=timezone.now())
        return [message.pk for message in messages]
    finally:
        release_db()


questions = per_loop(store_questions)
answers = per_loop(store_answers)
