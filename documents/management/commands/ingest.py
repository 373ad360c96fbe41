"""``manage.py ingest PATH... --tenant SLUG [--keep-duplicates] [--wait]``: upload files and
folders (recursively). A file whose bytes the tenant already has is reported, not uploaded
again, so running the command twice over a folder queues nothing the second time."""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from documents import services
from documents.audit import Source
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
        parser.add_argument(
            "--keep-duplicates",
            action="store_true",
            help="Upload files whose bytes the tenant already has as new copies.",
        )
        add_wait_argument(parser)

    def handle(self, *args, **options):
        tenant = tenant_by_slug(options["tenant"])
        files = self._files(options["paths"])
        uploads = services.documents_upload(
            tenant=tenant,
            files=self._opened(files),
            keep_duplicate=options["keep_duplicates"],
            source=Source.COMMAND,
        )
        accepted = [u for u in uploads if u.document is not None and not u.duplicate]
        already = [u for u in uploads if u.duplicate]
        refused = [u for u in uploads if u.error is not None]
        held = [u for u in accepted if u.held]
        self.stdout.write(
            f"{len(accepted) - len(held)} queued, {len(refused)} refused, "
            f"{len(already)} already there, {len(held)} held"
        )
        if already:
            print_table(
                self.stdout,
                ["already there", "as document"],
                [[u.name, f"{u.document.pk} ({u.document.title})"] for u in already],
            )
        if held:
            print_table(
                self.stdout,
                ["held file", "reason"],
                [[u.name, u.document.held_reason] for u in held],
            )
        if refused:
            print_table(
                self.stdout,
                ["refused file", "reason"],
                [[u.name, u.error.message] for u in refused],
            )
        queued = [u.document.pk for u in accepted if not u.held]
        if options["wait"] and queued:
            follow(self.stdout, queued, timeout=options["timeout"])

    def _opened(self, files):
        # One file open at a time: the service reads each before asking for the next.
        for path in progress(files, desc="uploading", unit="file"):
            with path.open("rb") as handle:
                yield File(handle, name=path.name), ""

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
