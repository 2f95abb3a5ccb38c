import hashlib
import json
from pathlib import PurePath

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from knowledge.anchors import cite, describe


def citation_for(pk: int, title: str, source_name: str, file_name: str | None) -> str:
    """How answers cite a document: its file name, or its title for typed-in text."""
    name = PurePath(source_name or file_name or "").name or title
    return name.replace("[", "(").replace("]", ")").strip() or f"document {pk}"


class Collection(models.Model):
    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.name)[:100]
        super().save(*args, **kwargs)


class IndexStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    INDEXED = "indexed", "Indexed"
    REMOVED = "removed", "Not in index"
    FAILED = "failed", "Failed"


class Document(models.Model):
    collection = models.ForeignKey(
        Collection, on_delete=models.PROTECT, related_name="documents", null=True, blank=True
    )
    title = models.CharField(max_length=300)
    body = models.TextField(
        blank=True, help_text="Text of the document. Leave empty when uploading a file."
    )
    file = models.FileField(
        upload_to="documents/%Y/%m/",
        blank=True,
        help_text="PDF, DOCX, HTML, Markdown or plain text. Its text is extracted on save.",
    )
    source_name = models.CharField(
        max_length=500,
        blank=True,
        db_index=True,
        help_text="Original file name; `ingest` updates the document of the same name.",
    )
    source_url = models.URLField(blank=True, max_length=1000)
    groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="documents",
        help_text="Who may read it. None: everyone (anonymous visitors too, if the site allows).",
    )
    published = models.BooleanField(default=True)
    # [{"label": "page=2" | "slide=3" | "sheet=Name" | section title | "", "text": "..."}]: the
    # file's text as extracted (see knowledge.anchors).
    extracted = models.JSONField(default=list, blank=True, editable=False)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    # What the index should hold (content_hash) against what it holds (indexed_hash). The row,
    # not the task queue, is the truth: `sync_index` repairs any difference.
    content_hash = models.CharField(max_length=64, blank=True, editable=False)
    index_status = models.CharField(
        max_length=10, choices=IndexStatus.choices, default=IndexStatus.PENDING, editable=False
    )
    indexed_hash = models.CharField(max_length=64, blank=True, editable=False)
    indexed_at = models.DateTimeField(null=True, blank=True, editable=False)
    index_error = models.TextField(blank=True, editable=False)
    index_requested_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["title"]
        indexes = [models.Index(fields=["index_status"])]

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        self.content_hash = self.compute_content_hash()
        if not self.index_is_current:
            self.index_status = IndexStatus.PENDING
            self.index_requested_at = timezone.now()
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {
                *kwargs["update_fields"],
                "content_hash",
                "index_status",
                "index_requested_at",
            }
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("knowledge:source", args=[self.pk])

    @property
    def citation_name(self) -> str:
        return citation_for(self.pk, self.title, self.source_name, self.file.name)

    def segments(self) -> list[dict]:
        """The document's text as labelled segments (a PDF page each, for example)."""
        parts = []
        if self.body.strip():
            parts.append({"label": "", "text": self.body})
        parts.extend(seg for seg in self.extracted or [] if seg.get("text", "").strip())
        return parts

    def compute_content_hash(self, group_ids=None) -> str:
        if group_ids is None:
            group_ids = sorted(self.groups.values_list("pk", flat=True)) if self.pk else []
        state = {
            "title": self.title,
            "segments": self.segments(),
            "collection": self.collection.slug if self.collection is not None else None,
            "groups": sorted(group_ids),
            "published": self.published,
            "citation": self.citation_name,
            "source_url": self.source_url,
        }
        return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()

    @property
    def index_is_current(self) -> bool:
        return (
            self.index_status in (IndexStatus.INDEXED, IndexStatus.REMOVED)
            and self.indexed_hash == self.content_hash
        )


class Chunk(models.Model):
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    ordinal = models.PositiveIntegerField()
    text = models.TextField()
    label = models.CharField(max_length=300, blank=True, help_text="Page or section")
    token_count = models.PositiveIntegerField()
    embedding = models.BinaryField(null=True, blank=True, editable=False)
    # The model that made `embedding`: a vector of another model is made again, not reused.
    embedding_model = models.CharField(max_length=200, blank=True, default="", editable=False)
    # For the offline answerer: a vector of each sentence that may answer, float16, in order
    # (knowledge/sentence_vectors.py); empty when there is none, null until they are made.
    sentence_vectors = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["document", "ordinal"]
        constraints = [
            models.UniqueConstraint(fields=["document", "ordinal"], name="unique_chunk_ordinal")
        ]

    def __str__(self):
        return f"{self.document} #{self.ordinal}"

    @property
    def citation(self) -> str:
        return cite(self.document.citation_name, self.label)

    @property
    def label_display(self) -> str:
        return describe(self.label)
