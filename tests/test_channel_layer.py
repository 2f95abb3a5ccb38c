"""The embedded default's channel layer (ragsite/channel_layers.py): Channels' in-memory layer
whose expiry sweep runs at most once a second instead of on every receive and group_send."""

import uuid

from channels.layers import get_channel_layer
from channels_redis.core import RedisChannelLayer
from django.conf import settings

from ragsite.channel_layers import InMemoryChannelLayer


def test_the_layer_follows_the_deployment():
    """This one on the embedded default; Redis, shared by every process, once it is set."""
    layer = get_channel_layer()
    if settings.REDIS_URL:
        assert isinstance(layer, RedisChannelLayer)
        assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] == [settings.REDIS_URL]
    else:
        assert isinstance(layer, InMemoryChannelLayer)


async def test_group_messages_reach_members_and_stop_at_leaving_on_the_configured_layer():
    layer = get_channel_layer()
    me, you = await layer.new_channel(), await layer.new_channel()
    group = f"conversation.{uuid.uuid4().hex}"
    for channel in (me, you):
        await layer.group_add(group, channel)
    await layer.group_send(group, {"type": "conversation.events", "events": [1]})
    for channel in (me, you):
        assert await layer.receive(channel) == {"type": "conversation.events", "events": [1]}
    await layer.group_discard(group, you)
    await layer.group_send(group, {"type": "conversation.events", "events": [2]})
    await layer.send(you, {"type": "marker"})  # one channel's messages arrive in order
    assert (await layer.receive(me))["events"] == [2]
    assert await layer.receive(you) == {"type": "marker"}


async def test_messages_still_flow_and_the_sweep_is_rate_limited(monkeypatch):
    layer = InMemoryChannelLayer(expiry=60)
    sweeps = []
    stock = type(layer).__mro__[1]._clean_expired
    monkeypatch.setattr(
        type(layer).__mro__[1], "_clean_expired", lambda self: sweeps.append(1) or stock(self)
    )
    channels = [await layer.new_channel() for _ in range(50)]
    for channel in channels:
        await layer.group_add("conversation.x", channel)
    for _ in range(20):
        await layer.group_send("conversation.x", {"type": "conversation.events", "events": []})
    for channel in channels:
        for _ in range(20):
            assert (await layer.receive(channel))["type"] == "conversation.events"
    assert len(sweeps) == 1  # 20 sends and 1,000 receives, one sweep


async def test_expired_messages_are_still_dropped():
    layer = InMemoryChannelLayer(expiry=0)
    layer.clean_every = 0
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await layer.send(channel, {"type": "old"})
    layer._clean_expired()
    assert channel not in layer.channels and channel not in layer.groups.get("g", {})


async def test_it_says_whether_anyone_else_is_in_a_group():
    layer = InMemoryChannelLayer()
    me, you = await layer.new_channel(), await layer.new_channel()
    assert not layer.has_other_members("g", me)
    await layer.group_add("g", me)
    assert not layer.has_other_members("g", me)
    assert layer.has_other_members("g", you)  # a sender outside the group
    await layer.group_add("g", you)
    assert layer.has_other_members("g", me)
    await layer.group_discard("g", you)
    assert not layer.has_other_members("g", me)
