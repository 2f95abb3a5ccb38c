"""The embedded default's channel layer: Channels' in-memory layer, cleaning up at most once a
second.

The stock layer walks every channel and every group to drop expired entries on each receive and
each group_send. Every open websocket has a channel and follows a conversation group, so with
2,000 sockets open each message cost thousands of steps: a third of the server's CPU in the
websocket benchmark (bench/results/fixes.md). Messages expire after a minute and group entries
after a day, so a second's delay in dropping them changes nothing.
"""

import time

from channels.layers import InMemoryChannelLayer as StockInMemoryChannelLayer


class InMemoryChannelLayer(StockInMemoryChannelLayer):
    clean_every = 1.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._cleaned_at = float("-inf")

    def _clean_expired(self):
        now = time.monotonic()
        if now - self._cleaned_at < self.clean_every:
            return
        self._cleaned_at = now
        super()._clean_expired()
