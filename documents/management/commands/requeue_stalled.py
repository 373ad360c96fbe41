from django.core.management.base import BaseCommand

from documents import recovery
from documents.audit import Source
from documents.management.commands._common import add_wait_argument, report


class Command(BaseCommand):
    help = "Queue again documents whose worker died or whose message was lost."

    def add_arguments(self, parser):
        add_wait_argument(parser)

    def handle(self, *args, **options):
        result = recovery.stalled_documents_requeue(source=Source.COMMAND)
        report(
            self.stdout,
            [["examined", result.examined], ["queued again", result.requeued]],
            ids=result.ids,
            options=options,
        )
