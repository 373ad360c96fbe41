from django.core.management.base import BaseCommand
from django.db.models import Count

from documents import broker
from documents.management.commands._common import print_table
from documents.models import Document, Status


class Command(BaseCommand):
    help = "Documents per tenant and status, failures by kind, and the queue length."

    def handle(self, *args, **options):
        counts = {}
        for row in Document.objects.values("tenant__slug", "status").annotate(n=Count("pk")):
            counts.setdefault(row["tenant__slug"], {})[row["status"]] = row["n"]
        print_table(
            self.stdout,
            ["tenant", *Status.values, "total"],
            [
                [slug, *(by.get(s, 0) for s in Status.values), sum(by.values())]
                for slug, by in sorted(counts.items())
            ],
        )
        failures = (
            Document.objects.filter(status=Status.FAILED)
            .values("failure_kind")
            .annotate(n=Count("pk"))
            .order_by("-n")
        )
        print_table(
            self.stdout,
            ["failure kind", "documents"],
            [[f["failure_kind"], f["n"]] for f in failures],
        )
        try:
            length = broker.queue_length()
        except Exception as exc:  # noqa: BLE001 - a figure, not a reason to fail the command
            length = f"unknown ({type(exc).__name__})"
        self.stdout.write(f"queue length: {length}")
