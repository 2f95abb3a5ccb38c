"""Open websockets hold only the rights their user has now.

A socket is authenticated once, at connect; afterwards two things keep it honest:

- every chat turn re-reads the session and the user (`current_user`, one query), so a turn never
  runs with rights the user has lost, whichever process made the change and even when the channel
  layer is down;
- logging out, deleting a session, deactivating, deleting or demoting a user, and changing a user's
  groups send a message through the channel layer to the sockets of that session or user (each
  authenticated socket joins one group for its user and one for its session), so they close or
  stop a running answer within moments, across processes.

The signals fire in sync code (the admin, the logout view) inside transactions: messages go out
after the commit, so a socket re-checking on receipt sees the new rows, and a down layer costs the
caller at most SEND_TIMEOUT before later sends are skipped for a while (warning logged).
"""

import asyncio
import functools
import hashlib
import logging
import time
import weakref
from collections.abc import Iterable
from importlib import import_module

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_out
from django.contrib.sessions.backends.db import SessionStore as DBSessionStore
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from core.db import release_db

log = logging.getLogger(__name__)
MESSAGE_TYPE = "auth.changed"  # handled by ChatConsumer.auth_changed
SEND_TIMEOUT = 1.0
# After a failed send, skip the layer this long: deleting a hundred users while Redis is down
# must not cost a hundred timeouts.
BACKOFF_SECONDS = 10.0
# The fields that decide what a user may read, or whether their sessions still authenticate.
RIGHTS_FIELDS = frozenset({"is_active", "is_staff", "is_superuser", "password"})
# Per layer object: a layer rebuilt with new settings starts afresh.
_down_until: "weakref.WeakKeyDictionary[object, float]" = weakref.WeakKeyDictionary()
DB_SESSIONS = "django.contrib.sessions.backends.db"


def user_group(user_id) -> str:
    return f"auth.user.{user_id}"


def session_group(session_key: str) -> str:
    # Hashed: the layer (Redis) should not hold keys that log a browser in.
    return "auth.session." + hashlib.sha256(session_key.encode()).hexdigest()[:40]


async def current_user(session_key: str | None, user_id):
    """The user this session authenticates now, or None when it no longer does (logged out,
    expired, deleted, deactivated, password changed). One database query."""
    if not session_key or user_id is None:
        return None
    return await sync_to_async(_current_user, thread_sensitive=False)(session_key, user_id)


def _current_user(session_key: str, user_id):
    try:
        if settings.SESSION_ENGINE == DB_SESSIONS:
            user = _user_with_session(session_key, user_id)
            if user is None or user.session_data is None:
                return None
            data = DBSessionStore().decode(user.session_data)
        else:
            data = import_module(settings.SESSION_ENGINE).SessionStore(session_key).load()
            user = get_user_model()._default_manager.filter(pk=user_id).first()
    finally:
        release_db()
    return user if user is not None and user.is_active and _authenticates(data, user) else None


def _user_with_session(session_key: str, user_id):
    """The user row and, when it has not expired, the session's data: one query. Raw SQL: the
    ORM's compilation of the same query costs ten times its execution, on every turn."""
    model = get_user_model()
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = model._default_manager.raw(_lookup_sql(connection.vendor), [session_key, now, user_id])
    return next(iter(rows), None)


@functools.cache
def _lookup_sql(vendor: str) -> str:
    users, sessions = get_user_model()._meta, Session._meta
    quote = connection.ops.quote_name
    # Concrete fields are those with a column.
    columns = ", ".join(f"u.{quote(c)}" for field in users.concrete_fields if (c := field.column))
    pk_column = users.pk.column
    assert pk_column is not None
    return (
        f"SELECT {columns}, (SELECT s.{quote('session_data')} FROM {quote(sessions.db_table)} s"
        f" WHERE s.{quote('session_key')} = %s AND s.{quote('expire_date')} > %s) AS session_data"
        f" FROM {quote(users.db_table)} u WHERE u.{quote(pk_column)} = %s"
    )


def _authenticates(data: dict, user) -> bool:
    """What django.contrib.auth.get_user checks: the same user, a configured backend, and the
    password hash the session was made with (a password change ends other sessions)."""
    if str(data.get(SESSION_KEY)) != str(user.pk):
        return False
    if data.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return False
    saved = data.get(HASH_SESSION_KEY) or ""
    if constant_time_compare(saved, user.get_session_auth_hash()):
        return True
    return any(
        constant_time_compare(saved, user._get_session_auth_hash(secret=fallback))
        for fallback in settings.SECRET_KEY_FALLBACKS
    )


# --- signals: tell the sockets -------------------------------------------------------------------


def notify(groups, ended: bool) -> None:
    """After the current transaction commits, tell the sockets in `groups` that their rights
    changed (`ended`: their session is gone, close without asking the database)."""
    groups = sorted(set(groups))
    if groups:
        transaction.on_commit(lambda: _send(groups, ended))


def _send(groups: list[str], ended: bool) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    if time.monotonic() < _down_until.get(layer, 0.0):
        log.warning("channel layer down: open websockets of %s not told", groups)
        return
    message = {"type": MESSAGE_TYPE, "ended": ended}
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:  # sync code running on the loop's own thread: it cannot wait here
        task = loop.create_task(_send_all(layer, groups, message))
        _in_flight.add(task)
        task.add_done_callback(_sent)
        return
    try:
        async_to_sync(_send_all)(layer, groups, message)
    except Exception as exc:  # the change itself stands; each socket's next turn re-checks
        _down_until[layer] = time.monotonic() + BACKOFF_SECONDS
        log.warning("could not tell open websockets of %s: %r", groups, exc)


_in_flight: set[asyncio.Task] = set()


def _sent(task: asyncio.Task) -> None:
    _in_flight.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not tell open websockets: %r", task.exception())


async def _send_all(layer, groups, message) -> None:
    async with asyncio.timeout(SEND_TIMEOUT):
        for group in groups:
            await layer.group_send(group, message)


def _logged_out(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        notify([session_group(session.session_key)], ended=True)


def _session_deleted(sender, instance, **kwargs):
    # clearsessions deletes expired rows by the thousand; their sockets fail their next check.
    if instance.expire_date > timezone.now():
        notify([session_group(instance.session_key)], ended=True)


def _user_saved(sender, instance, created, update_fields=None, **kwargs):
    if created or (update_fields is not None and not RIGHTS_FIELDS & set(update_fields)):
        return  # e.g. last_login on every login
    notify([user_group(instance.pk)], ended=False)


def _user_deleted(sender, instance, **kwargs):
    notify([user_group(instance.pk)], ended=True)


def _groups_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action == "pre_clear" and reverse:  # group.user_set.clear(): who is in it, before
        instance._members_before_clear = list(instance.user_set.values_list("pk", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    user_ids: Iterable[int]
    if not reverse:
        user_ids = [instance.pk]
    elif action == "post_clear":
        user_ids = instance.__dict__.pop("_members_before_clear", [])
    else:
        user_ids = pk_set or ()
    notify([user_group(pk) for pk in user_ids], ended=False)


def _group_deleting(sender, instance, **kwargs):
    members = list(instance.user_set.values_list("pk", flat=True))
    notify([user_group(pk) for pk in members], ended=False)


def connect_signals() -> None:
    user_model = get_user_model()
    uid = "chat.revocation"
    user_logged_out.connect(_logged_out, dispatch_uid=uid)
    post_delete.connect(_session_deleted, sender=Session, dispatch_uid=uid)
    post_save.connect(_user_saved, sender=user_model, dispatch_uid=uid)
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid=uid)
    m2m_changed.connect(_groups_changed, sender=user_model.groups.through, dispatch_uid=uid)
    pre_delete.connect(_group_deleting, sender=Group, dispatch_uid=uid)
