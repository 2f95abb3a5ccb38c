"""Admin mixins shared by the apps' admins."""

from django.http import HttpRequest


class ViewOnlyMixin:
    """Staff may look, never add or change: a record of what happened stays as it happened."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class ReadOnlyInlineMixin(ViewOnlyMixin):
    """An inline that shows a record and never edits it."""

    extra = 0
    can_delete = False
