"""What the database knows of each document's vectors (issue 11): the high-water mark of
chunk indexes written, the last log sequence number, the vector state; the embedding cache,
the reconciliation reports and the namespaces of deleted tenants.

Documents processed before this migration wrote one vector per chunk they have now, so their
high-water mark starts at their chunk count (a shorter reprocess deleted the rest at the
time, by listing)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models




def known_vectors(apps, schema_editor):
    Document = apps.get_model("documents", "Document")
    Document.objects.update(vector_high=models.F("chunk_count"))
    Document.objects.filter(vector_count__gt=0).update(vector_state="written")


class Migration(migrations.Migration):

    dependencies = [
        ('documents', '0004_document_worker_losses'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='EmbeddingCacheEntry',
            fields=[
                ('key', models.CharField(max_length=64, primary_key=True, serialize=False)),
                ('scope', models.CharField(db_index=True, max_length=80)),
                ('model', models.CharField(max_length=120)),
                ('dimension', models.PositiveIntegerField()),
                ('vector', models.BinaryField()),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('used_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
            ],
        ),
        migrations.CreateModel(
            name='Reconciliation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('started_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('ended_at', models.DateTimeField(blank=True, null=True)),
                ('repair', models.BooleanField(default=False)),
                ('outcome', models.CharField(choices=[('running', 'Running'), ('clean', 'Index matches the database'), ('drift', 'Drift found'), ('repaired', 'Drift repaired'), ('failed', 'Failed')], default='running', max_length=10)),
                ('listed', models.PositiveIntegerField(default=0)),
                ('expected', models.PositiveIntegerField(default=0)),
                ('orphans_deleted', models.PositiveIntegerField(default=0)),
                ('orphans_stale', models.PositiveIntegerField(default=0)),
                ('orphans_foreign', models.PositiveIntegerField(default=0)),
                ('wrong_namespace', models.PositiveIntegerField(default=0)),
                ('missing', models.PositiveIntegerField(default=0)),
                ('documents_missing', models.PositiveIntegerField(default=0)),
                ('deleted', models.PositiveIntegerField(default=0)),
                ('requeued', models.PositiveIntegerField(default=0)),
                ('samples', models.JSONField(blank=True, default=dict)),
                ('error', models.TextField(blank=True)),
            ],
            options={
                'ordering': ['-started_at'],
            },
        ),
        migrations.CreateModel(
            name='RetiredNamespace',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('namespace', models.CharField(max_length=80, unique=True)),
                ('retired_at', models.DateTimeField(auto_now_add=True)),
                ('cleanup_attempts', models.PositiveIntegerField(default=0)),
                ('last_error', models.TextField(blank=True)),
            ],
        ),
        migrations.AddField(
            model_name='deleteddocument',
            name='vector_high',
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='deleteddocument',
            name='vector_lsn',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='document',
            name='chunks_from_cache',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='document',
            name='resume_checkpoint',
            field=models.CharField(blank=True, max_length=100),
        ),
        migrations.AddField(
            model_name='document',
            name='vector_high',
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name='document',
            name='vector_lsn',
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='document',
            name='vector_state',
            field=models.CharField(choices=[('none', 'No vectors written'), ('written', 'Written'), ('purge_pending', 'Purge pending'), ('purged', 'Purged (verified)')], default='none', max_length=16),
        ),
        migrations.AddField(
            model_name='document',
            name='vector_state_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name='document',
            name='failure_kind',
            field=models.CharField(blank=True, choices=[('encrypted', 'Encrypted'), ('corrupt', 'Corrupt or truncated file'), ('empty', 'No readable text'), ('unsupported_type', 'Unsupported type'), ('too_large', 'Too large'), ('too_many_pages', 'Too many pages'), ('dimension_mismatch', 'Embedding dimension mismatch'), ('rejected', 'Refused by a provider'), ('quota_exceeded', 'Provider plan limit reached'), ('missing_file', 'Stored file missing'), ('rate_limited', 'Rate limited'), ('unavailable', 'Service unavailable'), ('worker_lost', 'Worker lost'), ('internal', 'Internal error'), ('cancelled', 'Cancelled')], max_length=24),
        ),
        migrations.AddIndex(
            model_name='document',
            index=models.Index(fields=['vector_state', 'vector_state_at'], name='documents_d_vector__fc778c_idx'),
        ),
        migrations.AddField(
            model_name='reconciliation',
            name='tenant',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reconciliations', to='documents.tenant'),
        ),
        migrations.RunPython(known_vectors, migrations.RunPython.noop),
    ]
