from django.core.management.base import BaseCommand

from documents import reconcile
from documents.audit import Source
from documents.management.commands._common import print_table, progress, tenant_by_slug
from documents.models import Tenant


class Command(BaseCommand):
    help = (
        "Compare each tenant's vector namespace with its chunks in the database and report "
        "orphans, wrong-namespace and missing vectors; --repair deletes the orphans and "
        "re-indexes the documents with missing vectors."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="Only this tenant (slug).")
        parser.add_argument(
            "--repair", action="store_true", help="Delete orphans, re-queue missing vectors."
        )

    def handle(self, *args, **options):
        tenants = (
            [tenant_by_slug(options["tenant"])]
            if options.get("tenant")
            else list(Tenant.objects.order_by("slug"))
        )
        rows = []
        for tenant in progress(tenants, desc="reconciling", unit="tenant"):
            report = reconcile.reconcile_tenant(
                tenant, repair_drift=options["repair"], source=Source.COMMAND
            )
            rows.append(
                [
                    tenant.slug,
                    report.listed,
                    report.expected,
                    report.orphans_deleted,
                    report.orphans_stale,
                    report.orphans_foreign,
                    report.wrong_namespace,
                    f"{report.missing} ({report.documents_missing} documents)",
                    report.deleted,
                    report.requeued,
                    report.get_outcome_display() + (f": {report.error}" if report.error else ""),
                ]
            )
        print_table(
            self.stdout,
            [
                "tenant",
                "listed",
                "expected",
                "orphans: deleted docs",
                "stale chunks",
                "foreign ids",
                "wrong namespace",
                "missing",
                "deleted",
                "re-queued",
                "outcome",
            ],
            rows,
        )
