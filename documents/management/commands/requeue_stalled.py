from django.core.management.base import BaseCommand

from documents import recovery


class Command(BaseCommand):
    help = "Queue again documents whose worker died or whose message was lost."

    def handle(self, *args, **options):
        result = recovery.stalled_documents_requeue()
        self.stdout.write(
            f"{result.requeued} stalled documents queued again ({result.examined} examined)"
        )
