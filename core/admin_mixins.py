"""Admin mixins shared by the apps' admins."""


class ViewOnlyMixin:
    """Staff may look, never add or change: a record of what happened stays as it happened."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReadOnlyInlineMixin(ViewOnlyMixin):
    """An inline that shows a record and never edits it."""

    extra = 0
    can_delete = False
