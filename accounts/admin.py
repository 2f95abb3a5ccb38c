"""Staff make and revoke any user's API keys; a new key is shown once, on the page after saving."""

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts import api_keys
from accounts.models import ApiKey, ExternalIdentity, GroupMapping

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "user",
        "key_prefix",
        "status",
        "created_at",
        "expires_at",
        "last_used_at",
    ]
    list_filter = ["revoked"]
    search_fields = ["name", "prefix", "user__username"]
    autocomplete_fields = ["user"]
    actions = ["revoke"]

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> "_FieldGroups":
        if obj is None:
            return ["user", "name", "expires_at"]
        return ["user", "name", "key_prefix", "created_at", "expires_at", "last_used_at", "revoked"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> list[str]:
        if obj is None:
            return []
        return ["user", "key_prefix", "created_at", "last_used_at"]

    @admin.display(description="Key")
    def key_prefix(self, obj: ApiKey) -> str:
        return f"rsk_{obj.prefix}_…"

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        if change:
            return super().save_model(request, obj, form, change)
        obj.prefix, key = api_keys.new_key()
        obj.digest = api_keys.digest(key)
        obj.save()
        # The key itself is never stored: it reaches response_add on the request, shown once.
        request._new_api_key = key  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        key = request._new_api_key  # type: ignore[attr-defined]  # set by save_model above
        return TemplateResponse(
            request,
            "admin/accounts/key_created.html",
            {**self.admin_site.each_context(request), "key": key, "row": obj},
        )

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        count = 0
        for row in queryset.filter(revoked=False):
            row.revoked = True
            row.save(update_fields=["revoked"])
            count += 1
        self.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


@admin.register(GroupMapping)
class GroupMappingAdmin(admin.ModelAdmin):
    """Which provider group or app role puts its holders in which Django group (applied at every
    sign-in and to every bearer token; a group whose claim is gone is removed then)."""

    list_display = ["claim", "group"]
    search_fields = ["claim", "group__name"]
    autocomplete_fields = ["group"]


@admin.register(ExternalIdentity)
class ExternalIdentityAdmin(admin.ModelAdmin):
    list_display = ["user", "subject", "issuer", "last_sign_in"]
    search_fields = ["user__username", "subject"]
    readonly_fields = ["user", "issuer", "subject", "last_sign_in"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
