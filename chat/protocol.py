"""The chat wire protocol (docs/protocol.md): request validation and event encoding, the same
for the HTTP endpoints and the websocket.

Validation errors carry the HTTP status they deserve and a message meant for the client's user.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.conf import settings

from chat.llm.model_family import EFFORTS

RETRIEVAL_MODES = ("text", "vectors", "hybrid")
_TOP_LEVEL = {"messages", "context", "session_state"}


class ProtocolError(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Overrides:
    top: int | None = None
    retrieval_mode: str | None = None
    temperature: float | None = None
    suggest_followup_questions: bool = False
    collection: str | None = None
    render_html: bool = False
    reasoning_effort: str | None = None  # reasoning models only (chat/llm/model_family.py)


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[dict, ...]
    overrides: Overrides = field(default_factory=Overrides)
    session_state: uuid.UUID | None = None

    @property
    def question(self) -> str:
        return self.messages[-1]["content"]


def parse_body(raw: bytes) -> dict:
    if len(raw) > settings.CHAT_MAX_BODY_BYTES:
        raise ProtocolError(
            f"The request is too large ({len(raw)} bytes; at most {settings.CHAT_MAX_BODY_BYTES}).",
            413,
        )
    try:
        data = decode(raw)
    except ValueError:
        raise ProtocolError("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ProtocolError("The request body must be a JSON object.")
    return data


def parse_request(data: dict, extra_fields: frozenset = frozenset()) -> ChatRequest:
    unknown = set(data) - _TOP_LEVEL - extra_fields
    if unknown:
        raise ProtocolError(f"Unknown field(s): {', '.join(sorted(unknown))}.")
    return ChatRequest(
        messages=_messages(data.get("messages")),
        overrides=_overrides(data.get("context")),
        session_state=_session_state(data.get("session_state")),
    )


def _messages(value) -> tuple[dict, ...]:
    if not isinstance(value, list) or not value:
        raise ProtocolError("'messages' must be a non-empty list of {role, content} objects.")
    if len(value) > settings.CHAT_MAX_MESSAGES:
        raise ProtocolError(
            f"Too many messages ({len(value)}; at most {settings.CHAT_MAX_MESSAGES}).", 413
        )
    cleaned = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise ProtocolError(f"messages[{i}] must be an object with 'role' and 'content'.")
        role, content = message.get("role"), message.get("content")
        if role not in ("user", "assistant"):
            raise ProtocolError(f"messages[{i}].role must be 'user' or 'assistant'.")
        if not isinstance(content, str):
            raise ProtocolError(f"messages[{i}].content must be a string.")
        if len(content) > settings.CHAT_MAX_MESSAGE_CHARS:
            raise ProtocolError(
                f"messages[{i}] is too long ({len(content)} characters; at most "
                f"{settings.CHAT_MAX_MESSAGE_CHARS}).",
                413,
            )
        cleaned.append({"role": role, "content": content})
    if cleaned[-1]["role"] != "user":
        raise ProtocolError("The last message must be the user's question.")
    if not cleaned[-1]["content"].strip():
        raise ProtocolError("The question is empty.")
    return tuple(cleaned)


def _overrides(context) -> Overrides:
    if context is None:
        return Overrides()
    if not isinstance(context, dict):
        raise ProtocolError("'context' must be an object.")
    raw = context.get("overrides", {})
    if raw is None:
        return Overrides()
    if not isinstance(raw, dict):
        raise ProtocolError("'context.overrides' must be an object.")
    values: dict[str, Any] = {}
    if (top := raw.get("top")) is not None:
        if (
            not isinstance(top, int)
            or isinstance(top, bool)
            or not 1 <= top <= settings.CHAT_MAX_TOP
        ):
            raise ProtocolError(f"'top' must be a whole number from 1 to {settings.CHAT_MAX_TOP}.")
        values["top"] = top
    if (mode := raw.get("retrieval_mode")) is not None:
        if mode not in RETRIEVAL_MODES:
            raise ProtocolError(f"'retrieval_mode' must be one of {', '.join(RETRIEVAL_MODES)}.")
        values["retrieval_mode"] = mode
    if (temperature := raw.get("temperature")) is not None:
        if (
            not isinstance(temperature, int | float)
            or isinstance(temperature, bool)
            or not 0 <= temperature <= 2
        ):
            raise ProtocolError("'temperature' must be a number from 0 to 2.")
        values["temperature"] = float(temperature)
    for flag in ("suggest_followup_questions", "render_html"):
        if (value := raw.get(flag)) is not None:
            if not isinstance(value, bool):
                raise ProtocolError(f"'{flag}' must be true or false.")
            values[flag] = value
    if (effort := raw.get("reasoning_effort")) is not None:
        if effort not in EFFORTS:
            raise ProtocolError(f"'reasoning_effort' must be one of {', '.join(EFFORTS)}.")
        values["reasoning_effort"] = effort
    if (collection := raw.get("collection")) is not None:
        if not isinstance(collection, str) or not 0 < len(collection) <= 100:
            raise ProtocolError("'collection' must be a collection's slug.")
        values["collection"] = collection
    return Overrides(**values)


def _session_state(value) -> uuid.UUID | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProtocolError("'session_state' must be a string or null.")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ProtocolError(
            "'session_state' is not a conversation id this server issued."
        ) from None


def encode(event: dict) -> bytes:
    """One JSON Lines record (compact UTF-8). orjson: this runs once per streamed delta, and
    twice per chat for the context, which carries the passages' text."""
    return orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE)


def encode_text(event: dict) -> str:
    """One event as a websocket text frame."""
    return orjson.dumps(event).decode()


def decode(text: str | bytes):
    """A JSON document; ValueError when it is not one (including invalid UTF-8 and nesting too
    deep to parse, where Python's json raised RecursionError)."""
    return orjson.loads(text)


def error_event(message: str) -> dict:
    return {"error": message}
