from django.core.management.base import BaseCommand

from documents import services
from documents.management.commands._common import add_selection_arguments, selected_documents


class Command(BaseCommand):
    help = "Queue documents again from the start (those already processing are skipped)."

    def add_arguments(self, parser):
        add_selection_arguments(parser)

    def handle(self, *args, **options):
        result = services.documents_reprocess(queryset=selected_documents(options))
        self.stdout.write(
            f"{result.done} documents queued for reprocessing, "
            f"{result.skipped} skipped because they are already processing"
        )
