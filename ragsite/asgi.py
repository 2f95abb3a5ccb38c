"""ASGI entry point: Django for HTTP, Channels for the chat websocket."""

import os

from django.core.asgi import get_asgi_application

from ragsite import env_file

env_file.load()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ragsite.settings")
django_asgi = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.socket_auth import BearerSocketAuth, TicketSocketAuth  # noqa: E402
from chat.api_handler import ChatAPIHandler, Router, chat_api_paths  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402
from chat.ws_origin import SameOriginValidator  # noqa: E402
from core import telemetry  # noqa: E402
from core.access_log import AccessLog  # noqa: E402
from core.body_limit import BodyLimit  # noqa: E402
from ragsite.gc_tuning import tune  # noqa: E402
from ragsite.lifespan import Lifespan  # noqa: E402

application = Lifespan(
    AccessLog(
        ProtocolTypeRouter(
            {
                "http": BodyLimit(Router(django_asgi, ChatAPIHandler()), chat_api_paths),
                "websocket": BearerSocketAuth(
                    URLRouter(websocket_urlpatterns),  # type: ignore[arg-type]  # see below
                    # types-channels wants its own URLPattern subclass; path() makes Django's.
                    SameOriginValidator(
                        AuthMiddlewareStack(
                            TicketSocketAuth(URLRouter(websocket_urlpatterns))  # type: ignore[arg-type]
                        )
                    ),
                ),
            }
        )
    )
)

telemetry.configure()
tune()  # last: everything loaded so far lives as long as the process
