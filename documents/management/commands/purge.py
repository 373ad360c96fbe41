from django.core.management.base import BaseCommand

from documents import services
from documents.audit import Source
from documents.management.commands._common import (
    add_selection_arguments,
    print_table,
    progress,
    selected_documents,
)


class Command(BaseCommand):
    help = "Remove documents' vectors and check by listing that none is left."

    def add_arguments(self, parser):
        add_selection_arguments(parser)

    def handle(self, *args, **options):
        # Synchronous here: the command reports what it verified, not what it queued.
        done, skipped = services.documents_purge_vectors_verified(
            queryset=selected_documents(options),
            source=Source.COMMAND,
            each=lambda ids: progress(ids, desc="purging", unit="doc"),
        )
        rows = [[pk, removed, 0] for pk, removed in done]
        print_table(self.stdout, ["document", "vectors removed", "vectors left"], rows)
        self.stdout.write(f"{len(done)} purged, {skipped} skipped because they are processing")
