"""Staff make and revoke any user's API keys; a new key is shown once, on the page after saving."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse

from accounts import api_keys
from accounts.models import ApiKey, ExternalIdentity, GroupMapping


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

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "expires_at"]
        return ["user", "name", "key_prefix", "created_at", "expires_at", "last_used_at", "revoked"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["user", "key_prefix", "created_at", "last_used_at"]

    @admin.display(description="Key")
    def key_prefix(self, obj):
        return f"rsk_{obj.prefix}_…"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        obj.prefix, key = api_keys.new_key()
        obj.digest = api_keys.digest(key)
        obj.save()
        request._new_api_key = key

    def response_add(self, request, obj, post_url_continue=None):
        return TemplateResponse(
            request,
            "admin/accounts/key_created.html",
            {**self.admin_site.each_context(request), "key": request._new_api_key, "row": obj},
        )

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
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

    def has_add_permission(self, request):
        return False
