"""Conversation review for staff: read-only, so the record of what users were told stays true."""

from django.contrib import admin
from django.utils.html import format_html_join
from django.utils.text import Truncator

from chat.models import Conversation, Feedback, Message
from core.admin_mixins import ReadOnlyInlineMixin, ViewOnlyMixin


class MessageInline(ReadOnlyInlineMixin, admin.StackedInline):
    model = Message
    fields = readonly_fields = (
        "role",
        "content",
        "interrupted",
        "error",
        "cited",
        "usage",
        "timings",
        "created_at",
    )

    @admin.display(description="Sources shown")
    def cited(self, obj):
        sources = (obj.context or {}).get("data_points", {}).get("sources", [])
        return format_html_join(
            ", ", '<a href="{}">{}</a>', ((s["url"], s["citation"]) for s in sources)
        )


@admin.register(Conversation)
class ConversationAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ["title", "owner", "message_count", "created_at", "updated_at"]
    list_filter = ["created_at"]
    search_fields = ["title", "owner__username", "messages__content"]
    date_hierarchy = "created_at"
    inlines = [MessageInline]
    readonly_fields = ["id", "owner", "session_key", "title", "created_at", "updated_at"]

    @admin.display(description="Messages")
    def message_count(self, obj):
        return obj.messages.count()


@admin.register(Feedback)
class FeedbackAdmin(ViewOnlyMixin, admin.ModelAdmin):
    list_display = ["verdict", "answer", "comment", "user", "created_at"]
    list_filter = ["helpful", "created_at"]
    search_fields = ["comment", "message__content"]
    list_select_related = ["message", "user"]
    readonly_fields = ["message", "user", "session_key", "helpful", "comment", "created_at"]

    @admin.display(description="Verdict", boolean=True, ordering="helpful")
    def verdict(self, obj):
        return obj.helpful

    @admin.display(description="Answer")
    def answer(self, obj):
        return Truncator(obj.message.content).chars(120)
