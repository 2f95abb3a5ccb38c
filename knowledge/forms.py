from django import forms
from django.conf import settings

from knowledge.extract import ExtractionError, extract, supported_list
from knowledge.models import Document


def read_upload(upload) -> bytes:
    """Read an uploaded file, refusing an oversized one before reading it into memory."""
    limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise ExtractionError(
            f"The file is {upload.size / 1048576:.1f} MB; the limit is {limit / 1048576:.0f} MB."
        )
    upload.seek(0)
    data = upload.read(limit + 1)
    upload.seek(0)
    return data


def extract_upload(upload) -> list[dict]:
    """The upload's segments, extracted once per request and remembered on the upload object.

    The admin calls this before it opens its transaction (DocumentAdmin.changeform_view), so the
    form's clean(), which runs inside it, finds the result here and no parser runs while the
    transaction holds the database's write lock.
    """
    outcome = getattr(upload, "_ragsite_extraction", None)
    if outcome is None:
        try:
            outcome = extract(upload.name, read_upload(upload))
        except ExtractionError as exc:
            outcome = exc
        upload._ragsite_extraction = outcome
    if isinstance(outcome, ExtractionError):
        raise outcome
    return outcome


class DocumentForm(forms.ModelForm):
    """Extracts an uploaded file's text while validating, so a bad file is a form error and
    nothing is saved: no half-saved document, no 500."""

    class Meta:
        model = Document
        fields = [
            "title",
            "collection",
            "published",
            "groups",
            "body",
            "file",
            "source_url",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.extracted = None
        if "file" in self.fields:
            self.fields["file"].help_text = f"Supported: {supported_list()}. " + (
                f"At most {settings.KNOWLEDGE_MAX_UPLOAD_BYTES // 1048576} MB."
            )
            self.fields["file"].widget.attrs["accept"] = ",".join(
                ext for ext in supported_list().split(", ")
            )

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        upload = cleaned.get("file")
        if upload and "file" in self.changed_data:
            try:
                self.extracted = extract_upload(upload)
            except ExtractionError as exc:
                self.add_error("file", str(exc))
        has_file = bool(upload) or (self.instance.pk and self.instance.file and upload is not False)
        if not (cleaned.get("body") or "").strip() and not has_file:
            raise forms.ValidationError("Give the document a text body or upload a file.")
        return cleaned

    def save(self, commit=True):
        doc = super().save(commit=False)
        if self.extracted is not None:
            doc.extracted = self.extracted
            doc.source_name = self.cleaned_data["file"].name
        elif self.cleaned_data.get("file") is False:  # "clear" ticked: the file's text goes too
            doc.extracted = []
        if commit:
            doc.save()
            self.save_m2m()
        return doc
