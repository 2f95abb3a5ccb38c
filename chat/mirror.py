"""Live multi-device conversations: the events of an answer streaming on one websocket reach every
other socket following the same conversation, through the channel layer (Redis across worker
processes and hosts). Deltas are coalesced so the layer is hit a few times a second per answer,
not once per token, and travel as encoded frames that followers forward as they are. Mirroring is
best effort: a channel-layer outage never breaks the answer on the socket that asked."""

import asyncio
import logging
import uuid

from chat.protocol import encode_text

log = logging.getLogger(__name__)
FLUSH_SECONDS = 0.2  # 5 layer messages a second per answer: a live view, not a token feed
DELTA = "response.output_text.delta"


def group_name(conversation_id: uuid.UUID | str) -> str:
    return f"conversation.{conversation_id}"


class Mirror:
    def __init__(self, layer, conversation_id, origin: str):
        self.layer = layer
        self.group = group_name(conversation_id)
        self.origin = origin
        self.pending: list[dict] = []
        self.delta_since: float | None = None
        self.healthy = layer is not None
        # The in-memory layer can tell when the asking socket is the group's only member.
        self.audience = getattr(layer, "has_other_members", None)

    async def add(self, event: dict) -> None:
        if not self.healthy:
            return
        if self.audience is not None and not self.audience(self.group, self.origin):
            self.pending, self.delta_since = [], None
            return
        loop = asyncio.get_running_loop()
        if event.get("type") == DELTA and self.pending and self.pending[-1].get("type") == DELTA:
            self.pending[-1] = {"type": DELTA, "delta": self.pending[-1]["delta"] + event["delta"]}
        else:
            self.pending.append(event)
        if event.get("type") != DELTA:
            await self.flush()
        elif self.delta_since is None:
            self.delta_since = loop.time()
        elif loop.time() - self.delta_since >= FLUSH_SECONDS:
            await self.flush()

    async def flush(self) -> None:
        if not self.pending or not self.healthy:
            return
        events, self.pending, self.delta_since = self.pending, [], None
        try:
            frames = [encode_text(event) for event in events]
            await self.layer.group_send(
                self.group, {"type": "conversation.events", "frames": frames, "origin": self.origin}
            )
        except Exception as exc:  # Redis down: the asking socket still gets its answer
            self.healthy = False
            log.warning("channel layer unavailable, not mirroring %s: %r", self.group, exc)
