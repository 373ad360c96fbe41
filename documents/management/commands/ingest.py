"""``manage.py ingest PATH... --tenant SLUG [--wait]``: upload files and folders (recursively)."""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from documents import services
from documents.errors import ApplicationError
from documents.management.commands._common import (
    add_wait_argument,
    follow,
    print_table,
    progress,
    tenant_by_slug,
)


class Command(BaseCommand):
    help = "Upload files and folders (recursively) into a tenant and queue their processing."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        add_wait_argument(parser)

    def handle(self, *args, **options):
        tenant = tenant_by_slug(options["tenant"])
        files = self._files(options["paths"])
        accepted, refused = [], []
        for path in progress(files, desc="uploading", unit="file"):
            try:
                with path.open("rb") as handle:
                    document = services.document_create(
                        tenant=tenant, uploaded_file=File(handle, name=path.name)
                    )
                accepted.append((path, document))
            except ApplicationError as exc:
                refused.append((path, exc.message))
        self.stdout.write(f"{len(accepted)} queued, {len(refused)} refused")
        if refused:
            print_table(self.stdout, ["refused file", "reason"], [[p, r] for p, r in refused])
        if options["wait"] and accepted:
            follow(self.stdout, [d.pk for _, d in accepted], timeout=options["timeout"])

    def _files(self, paths) -> list[Path]:
        found = []
        for raw in paths:
            path = Path(raw)
            if path.is_dir():
                found.extend(sorted(p for p in path.rglob("*") if p.is_file()))
            elif path.is_file():
                found.append(path)
            else:
                raise CommandError(f"{raw} is neither a file nor a folder.")
        return found
