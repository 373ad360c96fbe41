from django.core.management.base import BaseCommand

from documents import services
from documents.audit import Source
from documents.management.commands._common import (
    add_selection_arguments,
    add_wait_argument,
    report,
    selected_documents,
)


class Command(BaseCommand):
    help = "Queue documents again from the start (those already processing are skipped)."

    def add_arguments(self, parser):
        add_selection_arguments(parser)
        add_wait_argument(parser)

    def handle(self, *args, **options):
        result = services.documents_reprocess(
            queryset=selected_documents(options), source=Source.COMMAND
        )
        report(
            self.stdout,
            [
                ["queued for reprocessing", result.done],
                ["skipped: already processing", result.skipped],
            ],
            ids=result.ids,
            options=options,
        )
