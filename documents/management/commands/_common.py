"""What the management commands share: choosing documents, a progress bar, a summary table."""

from __future__ import annotations

import time

from django.core.management.base import CommandError
from tqdm import tqdm

from documents.models import Document, Status, Tenant


def add_selection_arguments(parser) -> None:
    parser.add_argument("--tenant", help="Only this tenant (slug).")
    parser.add_argument("--status", choices=Status.values, help="Only documents in this status.")
    parser.add_argument("ids", nargs="*", help="Document ids (default: all that match).")


def tenant_by_slug(slug: str) -> Tenant:
    tenant = Tenant.objects.filter(slug=slug).first()
    if tenant is None:
        raise CommandError(f"No tenant with the slug {slug!r}.")
    return tenant


def selected_documents(options):
    queryset = Document.objects.all()
    if options.get("tenant"):
        queryset = queryset.filter(tenant=tenant_by_slug(options["tenant"]))
    if options.get("status"):
        queryset = queryset.filter(status=options["status"])
    if options.get("ids"):
        queryset = queryset.filter(pk__in=options["ids"])
    return queryset


def progress(iterable=None, **kwargs):
    return tqdm(iterable, dynamic_ncols=True, **kwargs)


def print_table(stdout, headers: list[str], rows: list[list]) -> None:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    line = "+".join("-" * (w + 2) for w in widths)
    stdout.write("+" + line + "+")
    for n, row in enumerate(cells):
        stdout.write("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            stdout.write("+" + line + "+")
    stdout.write("+" + line + "+")


def wait_until_done(ids, *, timeout: float | None = None, poll: float = 1.0) -> list[Document]:
    """Follow documents with a progress bar until none is processing."""
    ids = list(ids)
    deadline = time.monotonic() + timeout if timeout else None
    with progress(total=len(ids), desc="processed", unit="doc") as bar:
        while True:
            finished = Document.objects.filter(pk__in=ids).exclude(status=Status.PROCESSING).count()
            bar.n = finished
            bar.refresh()
            if finished >= len(ids) or (deadline and time.monotonic() > deadline):
                break
            time.sleep(poll)
    return list(Document.objects.filter(pk__in=ids).order_by("original_filename"))


def add_wait_argument(parser) -> None:
    parser.add_argument("--wait", action="store_true", help="Follow the documents until done.")
    parser.add_argument(
        "--timeout", type=float, default=None, help="With --wait: give up after N s."
    )


def report(stdout, rows: list[list], *, ids=(), options=None) -> None:
    """The summary table of a bulk command; with --wait, follow the documents it queued and
    end with their outcome."""
    print_table(stdout, ["what", "documents"], rows)
    if options and options.get("wait") and ids:
        follow(stdout, ids, timeout=options.get("timeout"))


def follow(stdout, ids, *, timeout: float | None) -> list[Document]:
    """Wait for the documents to finish, then print how each ended and the totals."""
    documents = wait_until_done(ids, timeout=timeout)
    print_table(
        stdout,
        ["document", "status", "chunks", "reason"],
        [[d.original_filename, d.status, d.chunk_count, d.failure_message] for d in documents],
    )
    counts = {s: sum(d.status == s for d in documents) for s in Status.values}
    stdout.write(", ".join(f"{n} {s}" for s, n in counts.items()))
    return documents
