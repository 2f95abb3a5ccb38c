"""The chat websocket (/ws/chat/): the same request and events as HTTP, one answer at a time per
socket, cancellable, and bad frames answered with an error frame while the socket stays open.

A socket follows the conversations it chats in (or names with a `follow` frame), its ten most
recent: answers streamed on another socket of the same owner reach it too, through the channel
layer (chat/mirror.py).

A socket keeps only the rights its user has now: each turn re-reads the session and the user, and
a logout or a change to the user's rights closes the socket or stops its answer at once
(chat/revocation.py)."""

import asyncio
import logging
import uuid
from contextlib import aclosing
from typing import TYPE_CHECKING

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings

from accounts import bearer
from chat import pipeline, revocation
from chat.limits import LimitExceeded, admit
from chat.llm.base import AnswerError
from chat.mirror import Mirror, group_name
from chat.models import Conversation
from chat.protocol import ProtocolError, decode, encode_text, parse_request
from core import log_context
from core.client_address import scope_client_address
from core.outage import MESSAGE, is_outage

if TYPE_CHECKING:
    from channels.consumer import _ChannelScope

    from knowledge.access import AccessFilter

    class SocketScope(_ChannelScope, total=False):
        """The keys accounts/socket_auth.py adds for a bearer socket."""

        bearer: str  # the Authorization header, checked again each turn
        access: AccessFilter  # the credential's rights as of the last check


log = logging.getLogger(__name__)
CLOSE_UNAUTHENTICATED = 4401  # also: the session or the user is no longer valid
RIGHTS_CHANGED = "Your access rights changed; the answer was stopped. Please ask again."
# A socket shows one conversation at a time; a long-lived one that starts many must not keep a
# channel-layer membership for each of them.
MAX_FOLLOWED = 10
LAYER_RETRY_SECONDS = (0.5, 30.0)  # first and longest pause between tries while the layer is down


class ChatConsumer(AsyncWebsocketConsumer):
    scope: "SocketScope"

    async def __call__(self, scope, receive, send):
        """Channels' consumer loop, except that a channel layer going away (Redis down) does not
        take the socket with it: the socket keeps answering, and what comes through the layer
        (other devices' answers, logout and rights notices) waits until the layer is back. Each
        turn re-checks the user meanwhile (chat/revocation.py)."""
        self.scope = scope
        # None where no channel layer is configured (Channels' own __call__ allows it too).
        self.channel_layer = get_channel_layer(self.channel_layer_alias)  # type: ignore[assignment]
        self.base_send = send
        sources = [receive]
        if self.channel_layer is not None:
            self.channel_name = await self.channel_layer.new_channel()
            sources.append(self._from_layer)
        try:
            await await_many_dispatch(sources, self.dispatch)
        except StopConsumer:
            pass

    async def _from_layer(self):
        pause, longest = LAYER_RETRY_SECONDS
        while True:
            try:
                return await self.channel_layer.receive(self.channel_name)
            except Exception as exc:
                # Debug level: with thousands of sockets open, one line each would flood the
                # log; /readyz names the layer, and the mirror logs the outage once per answer.
                log.debug("channel layer unavailable, retrying in %.1f s: %r", pause, exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, longest)

    async def dispatch(self, message):
        try:
            await super().dispatch(message)
        except OSError as exc:  # a send to a client that has left; its disconnect is on the way
            if isinstance(exc, TimeoutError):
                raise
            self.gone = True

    async def connect(self):
        self.answering: asyncio.Task | None = None
        self.gone = False
        self.following: dict[str, None] = {}  # group names, least recently used first
        self.auth_groups: list[str] = []
        user = self.scope.get("user")
        authenticated = bool(user and user.is_authenticated)
        if not authenticated and not settings.CHAT_ALLOW_ANONYMOUS:  # chat/routing.py refuses first
            try:
                await self.close(code=CLOSE_UNAUTHENTICATED)
            except OSError:  # the client has gone already
                pass
            return
        session = self.scope.get("session")
        self.user_id = user.pk if user is not None and authenticated else None
        self.session_key = session.session_key if authenticated and session else None
        if self.user_id is not None and self.channel_layer is not None:
            # Where logouts and rights changes are announced (chat/revocation.py).
            groups = [revocation.user_group(self.user_id)]
            if self.session_key:
                groups.append(revocation.session_group(self.session_key))
            try:
                async with asyncio.timeout(revocation.SEND_TIMEOUT):  # a layer that hangs
                    for group in groups:
                        await self.channel_layer.group_add(group, self.channel_name)
                        self.auth_groups.append(group)
            except Exception as exc:  # each turn still re-checks the database
                log.warning("channel layer unavailable, revocations reach the next turn: %r", exc)
        await self.accept()

    async def disconnect(self, code):
        self.gone = True
        task = getattr(self, "answering", None)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=5)
        for group in list(getattr(self, "following", ())) + getattr(self, "auth_groups", []):
            await self._leave(group)

    async def _follow(self, conversation_id) -> None:
        group = group_name(conversation_id)
        if self.channel_layer is None:
            return
        if group in self.following:
            self.following[group] = self.following.pop(group)  # now the most recent
            return
        try:
            await self.channel_layer.group_add(group, self.channel_name)
        except Exception as exc:
            log.warning("channel layer unavailable, cannot follow %s: %r", group, exc)
            return
        self.following[group] = None
        while len(self.following) > MAX_FOLLOWED:
            await self._leave(next(iter(self.following)))

    async def _leave(self, group: str) -> None:
        self.following.pop(group, None)
        try:
            await self.channel_layer.group_discard(group, self.channel_name)
        except Exception:  # the layer is down; its group entries expire on their own
            log.warning("could not leave %s", group)

    async def conversation_events(self, message):
        """Events of an answer streaming on another socket of this conversation."""
        if message.get("origin") == self.channel_name:
            return
        # "events" (dicts): what a worker of an older release sends during a rolling upgrade.
        frames = message.get("frames") or [encode_text(e) for e in message.get("events", ())]
        for frame in frames:
            if self.gone:
                return
            await self.send(text_data=frame)

    async def _current_user(self):
        """The socket's user as the database has them now (one query), kept in the scope for the
        turn; None when the turn must not run: the socket is then closed (the session no longer
        authenticates the user) or has been told the database is unavailable."""
        if self.user_id is None:
            return self.scope.get("user")  # anonymous: nothing that could be revoked
        if self.scope.get("bearer"):
            return await self._bearer_user()
        try:
            user = await revocation.current_user(self.session_key, self.user_id)
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("database unavailable: %r", exc)
            await self.send_json({"error": MESSAGE})
            return None
        if user is None:
            await self._end()
            return None
        self.scope["user"] = user
        return user

    async def _bearer_user(self):
        """The credential's user now (accounts/bearer.py, cached): the same check as the
        handshake's, so a revoked or expired key stops at the next turn."""
        try:
            identity = await bearer.authenticate(self.scope["bearer"])
        except bearer.InvalidCredential:
            await self._end()
            return None
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("database unavailable: %r", exc)
            await self.send_json({"error": MESSAGE})
            return None
        # channels' stub types "user" as its AuthMiddleware's UserLazyObject; a bearer socket
        # holds the credential's user itself (accounts/socket_auth.py).
        self.scope["user"] = identity.user  # type: ignore[typeddict-item]
        self.scope["access"] = identity.access
        return identity.user

    async def _end(self) -> None:
        """The session no longer authenticates this socket's user: stop and close."""
        if self.gone:
            return
        self.gone = True
        if self.answering is not None and not self.answering.done():
            self.answering.cancel()
        try:
            await self.close(code=CLOSE_UNAUTHENTICATED)
        except OSError:  # already gone: nothing to close
            pass

    async def auth_changed(self, message):
        """A logout, or a change to this user's rights, announced by chat/revocation.py."""
        if message.get("ended"):
            await self._end()
            return
        user = await self._current_user()
        if user is not None and self.answering is not None and not self.answering.done():
            # The running answer was retrieved with the old rights.
            self.answering.cancel()
            try:
                await self.send_json({"error": RIGHTS_CHANGED})
            except OSError:  # the client has left; its disconnect is on the way
                self.gone = True

    async def _follow_frame(self, frame) -> None:
        try:
            conversation_id = uuid.UUID(str(frame.get("session_state")))
        except ValueError:
            await self.send_json({"error": "'session_state' is not a conversation id."})
            return
        session = self.scope.get("session")
        user = await self._current_user()
        if user is None:
            return
        conversation = await Conversation.objects.filter(pk=conversation_id).afirst()
        if conversation is None or not conversation.belongs_to(
            user, session.session_key if session else None
        ):
            await self.send_json({"error": "That conversation does not exist or is not yours."})
            return
        await self._follow(conversation_id)
        await self.send_json({"type": "following", "session_state": str(conversation_id)})

    async def send_json(self, event: dict) -> None:
        if not self.gone:
            await self.send(text_data=encode_text(event))

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
            frame = decode(text_data)
        except ValueError:
            await self.send_json({"error": "The frame is not valid JSON."})
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "cancel":
            if self.answering is not None and not self.answering.done():
                self.answering.cancel()
            return
        if kind == "follow":
            await self._follow_frame(frame)
            return
        if kind != "chat":
            await self.send_json(
                {"error": 'Each frame needs "type": "chat", "cancel" or "follow".'}
            )
            return
        if self.answering is not None and not self.answering.done():
            await self.send_json({"error": "An answer is already running on this socket."})
            return
        try:
            request = parse_request(frame, extra_fields=frozenset({"type"}))
        except ProtocolError as exc:
            await self.send_json({"error": exc.message})
            return
        if await self._current_user() is None:  # _answer reads the fresh user from the scope
            return
        self.answering = asyncio.create_task(self._answer(request))

    async def _answer(self, request):
        session_state, cancelled, turn, mirror, slot = None, False, None, None, None
        error = None
        session = self.scope.get("session")
        log_context.bind(channel="websocket")
        try:
            slot = await admit(self.scope.get("user"), scope_client_address(self.scope))
            turn = await pipeline.prepare(
                request,
                self.scope.get("user"),
                session.session_key if session else None,
                access=self.scope.get("access"),  # a bearer socket's, as checked this turn
            )
            turn.slot = slot
            slot.hold(turn)  # released with the slot: upstream closed, answer row written
            session_state = turn.session_state
            await self._follow(turn.conversation_id)
            mirror = Mirror(self.channel_layer, turn.conversation_id, self.channel_name)
            async with aclosing(pipeline.stream(turn)) as events:
                async for event in events:
                    try:
                        await self.send_json(event)
                    except OSError:  # the client has left; its disconnect is on the way
                        self.gone = cancelled = True
                        break
                    await mirror.add(event)
        except (ProtocolError, AnswerError, LimitExceeded) as exc:
            error = exc.message
        except asyncio.CancelledError:
            cancelled = True
        except Exception as exc:
            if is_outage(exc):
                log.warning("database unavailable: %r", exc)
                error = MESSAGE
            else:
                log.exception("websocket answer failed")
                error = "Something went wrong while answering."
        finally:
            # Once, and to the end even if this task is cancelled again meanwhile.
            if slot is not None:
                await slot.release()
        completed: dict[str, object] = {
            "type": "response.completed",
            "session_state": session_state,
        }
        if cancelled:
            completed["cancelled"] = True
        if mirror is not None:  # other devices first: this client may act on it at once
            await mirror.add(completed)
        # Free before telling the client: its next question may arrive at once.
        self.answering = None
        try:
            if error is not None:
                await self.send_json({"error": error})
            await self.send_json(completed)
        except OSError:  # the client left meanwhile: nobody to tell
            self.gone = True
