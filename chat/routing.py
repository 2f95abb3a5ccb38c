from django.conf import settings
from django.urls import path

from chat.consumers import CLOSE_UNAUTHENTICATED, ChatConsumer
from chat.ws_origin import refuse


class LoginGate:
    """With CHAT_ALLOW_ANONYMOUS off, anonymous handshakes are refused before a consumer (and its
    channel-layer channel) exists: a refusal costs no layer round trip and cannot fail on one."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        user = scope.get("user")
        if settings.CHAT_ALLOW_ANONYMOUS or (user is not None and user.is_authenticated):
            return await self.app(scope, receive, send)
        await refuse(receive, send, code=CLOSE_UNAUTHENTICATED)


websocket_urlpatterns = [path("ws/chat/", LoginGate(ChatConsumer.as_asgi()))]
