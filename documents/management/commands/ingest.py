"""``manage.py ingest PATH... --tenant SLUG [--wait]``: upload files and folders (recursively)."""

from __future__ import annotations

from pathlib import Path

from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from documents import services
from documents.errors import ApplicationError
from documents.management.commands._common import print_table, progress, wait_until_done
from documents.models import Status, Tenant


class Command(BaseCommand):
    help = "Upload files and folders (recursively) into a tenant and queue their processing."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--tenant", required=True, help="The tenant's slug.")
        parser.add_argument("--wait", action="store_true", help="Follow until every file is done.")
        parser.add_argument(
            "--timeout", type=float, default=None, help="With --wait: give up after N s."
        )

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"No tenant with the slug {options['tenant']!r}.")
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
        if not options["wait"] or not accepted:
            return
        documents = wait_until_done([d.pk for _, d in accepted], timeout=options["timeout"])
        print_table(
            self.stdout,
            ["file", "status", "chunks", "reason"],
            [[d.original_filename, d.status, d.chunk_count, d.failure_message] for d in documents],
        )
        counts = {s: sum(d.status == s for d in documents) for s in Status.values}
        self.stdout.write(", ".join(f"{n} {s}" for s, n in counts.items()))

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
