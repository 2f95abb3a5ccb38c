"""ASGI lifespan: close the per-process outbound clients (LLM, search) when the server stops."""

from chat.limits import chat_limits
from chat.llm import answerers
from core import telemetry
from core.asgi_types import ASGIApp, Receive, Scope, Send
from knowledge.embeddings import embedders
from knowledge.search import backends


class Lifespan:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await close_clients()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def close_clients() -> None:
    await answerers.close_all()
    await embedders.close_all()
    await backends.close_all()
    await chat_limits.close_all()
    telemetry.shutdown()
