"""The embedded default's channel layer: Channels' in-memory layer, cleaning up at most once a
second, and able to say whether a group has anyone but the sender in it.

The stock layer walks every channel and every group to drop expired entries on each receive and
each group_send. Every open websocket has a channel and follows a conversation group, so with
2,000 sockets open each message cost thousands of steps: a third of the server's CPU in the
websocket benchmark (bench/results/fixes.md). Messages expire after a minute and group entries
after a day, so a second's delay in dropping them changes nothing.

A websocket follows the conversation it answers in, so the answer's mirror (chat/mirror.py) would
deliver every event back to the one socket that asked and usually nobody else. In one process the
layer knows its groups, so the mirror asks first (`has_other_members`); the Redis layer cannot say
cheaply, so there the mirror always sends.
"""

import time
from typing import Any

from channels.layers import InMemoryChannelLayer as StockInMemoryChannelLayer


class InMemoryChannelLayer(StockInMemoryChannelLayer):
    clean_every = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cleaned_at = float("-inf")

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._cleaned_at < self.clean_every:
            return
        self._cleaned_at = now
        super()._clean_expired()  # type: ignore[misc]  # real, but missing from types-channels

    def has_other_members(self, group: str, channel: str) -> bool:
        members = self.groups.get(group, ())
        return len(members) > (channel in members)
