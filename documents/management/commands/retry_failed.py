from django.core.management.base import BaseCommand

from documents import recovery, services
from documents.audit import Source
from documents.management.commands._common import (
    add_selection_arguments,
    add_wait_argument,
    report,
    selected_documents,
)
from documents.models import Status


class Command(BaseCommand):
    help = (
        "Queue failed documents again. By default the same rule as the schedule: transient "
        "failures whose spacing has passed. --all, a tenant or ids retry every selected "
        "failed document, permanent failures included."
    )

    def add_arguments(self, parser):
        add_selection_arguments(parser)
        add_wait_argument(parser)
        parser.add_argument("--all", action="store_true", help="Permanent failures too.")

    def handle(self, *args, **options):
        if options["all"] or options["ids"] or options["tenant"]:
            options["status"] = Status.FAILED
            result = services.documents_retry_failed(
                queryset=selected_documents(options), source=Source.COMMAND
            )
        else:
            result = recovery.failed_documents_retry(source=Source.COMMAND)
        report(
            self.stdout,
            [["queued for a retry", result.done], ["skipped", result.skipped]],
            ids=result.ids,
            options=options,
        )
