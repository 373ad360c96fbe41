"""The chunk's normalised-text hash and the lexical index over chunk texts (PostgreSQL: a
generated tsvector column with a GIN index; SQLite: an FTS5 table kept by triggers). See
documents/lexical.py."""

from django.db import migrations, models

from documents.pipeline.fusion import text_hash


def fill_hashes(apps, schema_editor):
    Chunk = apps.get_model("documents", "Chunk")
    batch = []
    for chunk in Chunk.objects.filter(text_hash="").only("id", "text").iterator(chunk_size=2000):
        chunk.text_hash = text_hash(chunk.text)
        batch.append(chunk)
        if len(batch) == 2000:
            Chunk.objects.bulk_update(batch, ["text_hash"])
            batch = []
    if batch:
        Chunk.objects.bulk_update(batch, ["text_hash"])


def create_index(apps, schema_editor):
    from documents.lexical import create_index as create

    create(schema_editor)


def drop_index(apps, schema_editor):
    from documents.lexical import drop_index as drop

    drop(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0011_failure_kinds"),
    ]

    operations = [
        migrations.AddField(
            model_name="chunk",
            name="text_hash",
            field=models.CharField(blank=True, db_index=True, default="", max_length=64),
        ),
        migrations.RunPython(fill_hashes, migrations.RunPython.noop),
        migrations.RunPython(create_index, drop_index),
    ]
