"""Cached bearer look-ups (accounts/bearer.py) forget a user whose keys or rights change, so the
change applies at once in this process (other processes: within API_KEY_CACHE_SECONDS)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save

from accounts import bearer
from accounts.models import ApiKey


def _forget(user_id: object) -> None:
    # Now and after the commit: a look-up between the two would cache the old rows again.
    bearer.forget(user_id)
    transaction.on_commit(lambda: bearer.forget(user_id))


def _key_changed(sender: object, instance: ApiKey, **kwargs: Any) -> None:
    _forget(instance.user_id)


def _user_changed(sender: object, instance: Model, **kwargs: Any) -> None:
    _forget(instance.pk)


def _groups_changed(
    sender: object, instance: Model, action: str, reverse: bool, pk_set: object, **kwargs: Any
) -> None:
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:  # a group's members changed: who they were is not known after a clear
        bearer.forget()
        transaction.on_commit(bearer.forget)
    else:
        _forget(instance.pk)


def _group_deleted(sender: object, instance: Group, **kwargs: Any) -> None:
    bearer.forget()
    transaction.on_commit(bearer.forget)


def connect_signals() -> None:
    user_model = get_user_model()
    uid = "accounts.bearer"
    post_save.connect(_key_changed, sender=ApiKey, dispatch_uid=uid)
    post_delete.connect(_key_changed, sender=ApiKey, dispatch_uid=uid)
    post_save.connect(_user_changed, sender=user_model, dispatch_uid=uid)
    post_delete.connect(_user_changed, sender=user_model, dispatch_uid=uid)
    m2m_changed.connect(_groups_changed, sender=user_model.groups.through, dispatch_uid=uid)
    post_delete.connect(_group_deleted, sender=Group, dispatch_uid=uid)
