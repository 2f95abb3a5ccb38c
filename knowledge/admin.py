from django.contrib import admin, messages
from django.db.models import Count
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from core.admin_mixins import ReadOnlyInlineMixin
from knowledge.extract import ExtractionError
from knowledge.forms import DocumentForm, extract_upload
from knowledge.indexing import mark_pending
from knowledge.models import Chunk, Collection, Document, IndexStatus
from knowledge.tasks import enqueue_sync_on_commit

_BADGE_COLOURS = {
    IndexStatus.INDEXED: "#1e7e34",
    IndexStatus.PENDING: "#b8860b",
    IndexStatus.FAILED: "#c0392b",
    IndexStatus.REMOVED: "#6c757d",
}


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "document_count"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_documents=Count("documents"))

    @admin.display(description="Documents", ordering="n_documents")
    def document_count(self, obj):
        return obj.n_documents


class ChunkInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = Chunk
    fields = readonly_fields = ("ordinal", "label", "token_count", "preview")
    verbose_name_plural = "Chunks in the search index (read-only; rebuilt on every change)"

    @admin.display(description="Text")
    def preview(self, obj):
        return Truncator(obj.text).chars(300)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    form = DocumentForm
    list_display = [
        "title",
        "collection",
        "access",
        "published",
        "index_badge",
        "indexed_at",
        "short_error",
        "updated_at",
    ]
    list_filter = ["index_status", "published", "collection", "groups"]
    list_select_related = ["collection"]
    search_fields = ["title", "body", "source_name", "index_error"]
    date_hierarchy = "updated_at"
    filter_horizontal = ["groups"]
    actions = ["reindex", "publish", "unpublish"]
    inlines = [ChunkInline]
    readonly_fields = [
        "index_badge",
        "indexed_at",
        "index_error",
        "extracted_text",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
    ]
    fieldsets = [
        (None, {"fields": ["title", "collection", "published", "groups"]}),
        ("Content", {"fields": ["body", "file", "source_url", "extracted_text"]}),
        (
            "Search index",
            {"fields": ["index_badge", "indexed_at", "index_error"]},
        ),
        (
            "History",
            {
                "classes": ["collapse"],
                "fields": ["created_at", "created_by", "updated_at", "updated_by"],
            },
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The admin runs the whole form in transaction.atomic(), and SQLite takes its write lock
        # at BEGIN: reading the file there would stall every other writer for as long as the
        # parse takes. So the file is read first, outside it; the form's clean() reuses that.
        upload = request.FILES.get("file") if request.method == "POST" else None
        allowed = (
            self.has_add_permission(request)
            if object_id is None
            else self.has_change_permission(request)
        )
        if upload is not None and allowed:
            try:
                extract_upload(upload)
            except ExtractionError:
                pass  # remembered on the upload; the form shows it as the file field's error
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description="Who may read")
    def access(self, obj):
        names = [g.name for g in obj.groups.all()]
        return ", ".join(names) if names else "Everyone"

    @admin.display(description="Index", ordering="index_status")
    def index_badge(self, obj):
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 8px;border-radius:9px;'
            'font-size:11px;white-space:nowrap">{}</span>',
            _BADGE_COLOURS.get(obj.index_status, "#6c757d"),
            obj.get_index_status_display(),
        )

    @admin.display(description="Last error")
    def short_error(self, obj):
        return Truncator(obj.index_error).chars(80) if obj.index_error else ""

    @admin.display(description="Extracted text of the file")
    def extracted_text(self, obj):
        if not obj.extracted:
            return "(no file, or not extracted yet)"
        return format_html_join(
            "",
            '<div style="margin-bottom:1em"><strong>{}</strong>'
            '<pre style="white-space:pre-wrap;max-height:20em;overflow:auto">{}</pre></div>',
            (
                (seg.get("label") or "Text", Truncator(seg.get("text", "")).chars(5000))
                for seg in obj.extracted
            ),
        )

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Reindex selected documents")
    def reindex(self, request, queryset):
        ids = mark_pending(queryset)
        enqueue_sync_on_commit(ids)
        self.message_user(request, f"Queued {len(ids)} document(s) for indexing.")

    def _set_published(self, request, queryset, value: bool):
        count = 0
        for doc in queryset.select_related("collection"):
            if doc.published != value:
                doc.published = value
                doc.updated_by = request.user
                doc.save()
                count += 1
        verb = "Published" if value else "Unpublished"
        self.message_user(request, f"{verb} {count} document(s).", messages.SUCCESS)

    @admin.action(description="Publish selected documents")
    def publish(self, request, queryset):
        self._set_published(request, queryset, True)

    @admin.action(description="Unpublish selected documents")
    def unpublish(self, request, queryset):
        self._set_published(request, queryset, False)
