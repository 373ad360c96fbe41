"""``manage.py stats``: documents per tenant and status, failures by kind, the queue length."""

from django.core.management.base import BaseCommand

from documents import broker
from documents.management.commands._common import print_table
from documents.models import Document, Status, Tenant
from documents.selectors import failures_by_kind, status_counts_by_tenant


class Command(BaseCommand):
    help = "Documents per tenant and status, failures by kind, and the queue length."

    def handle(self, *args, **options):
        documents = Document.objects.all()
        print_table(
            self.stdout,
            ["tenant", *Status.values, "total"],
            [
                [name, *(by[s] for s in Status.values), sum(by.values())]
                for name, by in status_counts_by_tenant(documents, Tenant.objects.all())
            ],
        )
        print_table(self.stdout, ["failure kind", "documents"], failures_by_kind(documents))
        try:
            length = broker.queue_length()
        except Exception as exc:  # noqa: BLE001 - a figure, not a reason to fail the command
            length = f"unknown ({type(exc).__name__})"
        self.stdout.write(f"queue length: {length}")
