"""Garbage-collector settings for a server process (GC_TUNING, on by default).

A full (generation 2) collection walks every tracked object in the process: Django, the SDKs and
the state of every chat in flight. With 200 chats streaming that took up to 160 ms, it came every
few seconds, and every chat stalled with it (bench/results/fixes.md). So, once the application is
loaded, the objects of start-up (about 145,000, never garbage) are frozen out of the collector's
view, and full collections come after 1,000 middle-generation ones instead of 10: every few
minutes under load instead of every few seconds. Young collections come after 10,000 new objects
instead of 700: at 700 they ran several times per chat, each walking the live state of chats in
flight only to promote it (about 5 % of a chat's CPU, bench/results/fixes.md); with more room,
more of those objects are gone by the time a collection runs. Memory stays flat because the
chat path leaves no cyclic garbage for the collections to find (tests/test_chat_handler.py);
objects that outlive a young collection are freed by reference counting all the same.
"""

import gc

from django.conf import settings

YOUNG_COLLECTION_AFTER = 10_000
FULL_COLLECTION_EVERY = 1000


def tune() -> bool:
    """Apply the settings; False (and Python's defaults left alone) when GC_TUNING is off."""
    if not settings.GC_TUNING:
        return False
    gc.collect()  # start-up garbage goes now, not frozen forever
    gc.freeze()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, FULL_COLLECTION_EVERY)
    return True
