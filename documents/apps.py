from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


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
