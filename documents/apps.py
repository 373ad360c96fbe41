from pathlib import Path

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_migrate


class DocumentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "documents"

    def ready(self):
        # The folders the embedded defaults write to (SQLite's file, the filesystem broker's
        # message folders) are made once per process start, not as a side effect of reading
        # settings: kombu's filesystem transport fails on a folder that does not exist.
        folders = [Path(settings.VAR_DIR)]
        options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
            if key in options:
                folders.append(Path(options[key]))
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
        post_migrate.connect(_check_lexical_index, sender=self)


def _check_lexical_index(sender, using, **kwargs):
    # On SQLite a later migration that alters the chunk table rebuilds it and drops the
    # triggers that keep the full-text index in step; put them back (documents/lexical.py).
    from django.db import connections

    from documents.lexical import ensure_index

    ensure_index(connections[using])
