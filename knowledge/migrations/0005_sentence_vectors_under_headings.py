"""Sentence vectors are now embedded under their section's heading. Those made before, for chunks
that have a heading, are dropped: `sync_index` (or the document's next save) makes them again,
and until then the offline answerer reads those chunks by their words alone."""

from django.db import migrations

ANCHORS = ("page=", "slide=", "sheet=")  # knowledge.anchors: labels that are no heading


def drop_vectors_made_without_their_heading(apps, schema_editor):
    Chunk = apps.get_model("knowledge", "Chunk")
    made = Chunk.objects.exclude(sentence_vectors=None).exclude(label="")
    for anchor in ANCHORS:
        made = made.exclude(label__startswith=anchor)
    made.update(sentence_vectors=None)


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0004_chunk_sentence_vectors"),
    ]

    operations = [
        migrations.RunPython(drop_vectors_made_without_their_heading, migrations.RunPython.noop),
    ]
