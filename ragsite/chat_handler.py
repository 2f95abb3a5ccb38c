"""A lean ASGI handler for the chat API (POST /chat, POST /chat/stream).

Django's ASGIHandler gives every request its own thread-sensitive context, so the first sync call
of a request (a MiddlewareMixin hook, a sync signal receiver, the async ORM) creates an OS thread
for it; with Django's stock middleware every request hops to that thread a dozen times. For a
chat, which mostly waits on the model, that made threads, not the event loop, the bottleneck
(see bench/results). This handler serves only the chat API views, with no middleware; the views
load the session and the user themselves in one database call on the shared executor, and check
CSRF inline. The remaining thread-sensitive calls (Django's own request signals) share one thread.
"""

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response


class ChatAPIHandler(ASGIHandler):
    def load_middleware(self, is_async=False):
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)

    async def __call__(self, scope, receive, send):
        # No ThreadSensitiveContext: no per-request thread to create.
        await self.handle(scope, receive, send)


CHAT_API_PATHS = frozenset({"/chat", "/chat/stream"})


class Router:
    """HTTP requests for the chat API go to the lean handler, everything else to Django's."""

    def __init__(self, django_app, chat_app):
        self.django_app = django_app
        self.chat_app = chat_app

    async def __call__(self, scope, receive, send):
        app = self.chat_app if scope.get("path") in CHAT_API_PATHS else self.django_app
        await app(scope, receive, send)
