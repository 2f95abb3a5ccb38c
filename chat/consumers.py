"""The chat websocket (/ws/chat/): the same request and events as HTTP, one answer at a time per
socket, cancellable, and bad frames answered with an error frame while the socket stays open."""

import asyncio
import json
import logging
from contextlib import aclosing

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import pipeline
from chat.llm.base import AnswerError
from chat.protocol import ProtocolError, parse_request

log = logging.getLogger(__name__)
CLOSE_UNAUTHENTICATED = 4401


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.answering: asyncio.Task | None = None
        self.gone = False
        user = self.scope.get("user")
        if not (user and user.is_authenticated) and not settings.CHAT_ALLOW_ANONYMOUS:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.accept()

    async def disconnect(self, code):
        self.gone = True
        task = getattr(self, "answering", None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=5)

    async def send_json(self, event: dict) -> None:
        if not self.gone:
            await self.send(text_data=json.dumps(event, ensure_ascii=False, separators=(",", ":")))

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            await self.send_json({"error": "Send JSON text frames, not binary ones."})
            return
        if len(text_data.encode()) > settings.CHAT_MAX_BODY_BYTES:
            await self.send_json(
                {"error": f"The frame is too large (at most {settings.CHAT_MAX_BODY_BYTES} bytes)."}
            )
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            await self.send_json({"error": "The frame is not valid JSON."})
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "cancel":
            if self.answering is not None and not self.answering.done():
                self.answering.cancel()
            return
        if kind != "chat":
            await self.send_json({"error": 'Each frame needs "type": "chat" or "cancel".'})
            return
        if self.answering is not None and not self.answering.done():
            await self.send_json({"error": "An answer is already running on this socket."})
            return
        try:
            request = parse_request(frame, extra_fields=frozenset({"type"}))
        except ProtocolError as exc:
            await self.send_json({"error": exc.message})
            return
        self.answering = asyncio.create_task(self._answer(request))

    async def _answer(self, request):
        session_state, cancelled, turn = None, False, None
        session = self.scope.get("session")
        try:
            turn = await pipeline.prepare(
                request, self.scope.get("user"), session.session_key if session else None
            )
            session_state = turn.session_state
            async with aclosing(pipeline.stream(turn)) as events:
                async for event in events:
                    await self.send_json(event)
            turn = None
        except (ProtocolError, AnswerError) as exc:
            await self.send_json({"error": exc.message})
        except asyncio.CancelledError:
            cancelled = True
        except Exception:
            log.exception("websocket answer failed")
            await self.send_json({"error": "Something went wrong while answering."})
        finally:
            if turn is not None:
                await turn.close()
        completed = {"type": "response.completed", "session_state": session_state}
        if cancelled:
            completed["cancelled"] = True
        await self.send_json(completed)
