"""The periodic tasks beat runs, stored in the database (django-celery-beat) so they can be
edited in the admin. Intervals come from settings at the time of the migration."""

from django.conf import settings
from django.db import migrations

SCHEDULES = [
    (
        "Retry failed documents (transient failures)",
        "documents.retry_failed_documents",
        "RETRY_FAILED_INTERVAL_SECONDS",
    ),
    (
        "Re-queue stalled documents",
        "documents.requeue_stalled_documents",
        "REQUEUE_STALLED_INTERVAL_SECONDS",
    ),
    (
        "Clean up results, temporary files and deleted documents",
        "documents.cleanup",
        "CLEANUP_INTERVAL_SECONDS",
    ),
]


def create(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, setting in SCHEDULES:
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=getattr(settings, setting), period="seconds"
        )
        PeriodicTask.objects.update_or_create(
            name=name, defaults={"task": task, "interval": interval, "enabled": True}
        )


def remove(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(task__in=[task for _, task, _ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
