from django.core.management.base import BaseCommand

from documents import services
from documents.audit import Source
from documents.management.commands._common import (
    add_selection_arguments,
    print_table,
    progress,
    selected_documents,
)
from documents.models import Status


class Command(BaseCommand):
    help = (
        "Remove documents' vectors (every id the database recorded for them) and wait until "
        "the index shows the delete; Pinecone's reads lag its writes."
    )

    def add_arguments(self, parser):
        add_selection_arguments(parser)
        parser.add_argument(
            "--wait",
            type=float,
            default=None,
            help="Seconds to wait for the index to show the deletes "
            "(default: VECTOR_PURGE_WAIT_SECONDS).",
        )

    def handle(self, *args, **options):
        queryset = selected_documents(options)
        eligible = queryset.exclude(status=Status.PROCESSING).count()
        # Synchronous here: the command reports what it verified, not what it queued.
        with progress(total=eligible, desc="delete shown", unit="doc") as bar:

            def shown(done: int) -> None:
                bar.n = done
                bar.refresh()

            outcomes, skipped = services.documents_purge_vectors_and_wait(
                queryset=queryset,
                wait=options["wait"],
                on_progress=shown,
                source=Source.COMMAND,
            )
        print_table(
            self.stdout,
            ["document", "ids deleted", "state"],
            [[o.document_id, o.ids, "purged" if o.verified else "purge pending"] for o in outcomes],
        )
        purged = sum(o.verified for o in outcomes)
        pending = len(outcomes) - purged
        line = f"{purged} purged, {skipped} skipped because they are processing"
        if pending:
            line += (
                f", {pending} still pending: the index does not show the delete yet "
                "(its reads lag writes); the scheduled cleanup checks again"
            )
        self.stdout.write(line)
