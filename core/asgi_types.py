"""The ASGI interface as ragsite's middleware and the lean chat handler see it.

A scope is a dict and a message a mapping, as django-stubs type Django's ASGIHandler, so these
apps and Django's handler fit each other without casts. Channels' stubs type the same objects as
asgiref's TypedDicts; the one place a Channels app is wrapped (ragsite/asgi.py) says so.
"""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

type Scope = dict[str, Any]
type Message = Mapping[str, Any]
type Receive = Callable[[], Awaitable[Message]]
type Send = Callable[[Message], Awaitable[None]]
type ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
