"""The custom admin pages, reached through ``DocumentAdmin.get_urls`` and wrapped in
``admin_site.admin_view`` (staff login required). Each parses its input, makes one selector or
service call and renders the result with ``admin_site.each_context``; the scoping is in the
selectors and in the forms' tenant choices."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from documents import broker, selectors, services, storage
from documents.admin.charts import bar_chart
from documents.admin.forms import SearchForm, UploadForm
from documents.admin.html import highlight
from documents.admin.insight import FROM_STRUCTURE, document_link
from documents.audit import Source
from documents.errors import ApplicationError
from documents.search import chunks_search

# Ids the progress endpoint accepts in one call: a change list page shows at most a few
# hundred rows ("show all" is capped by list_max_show_all).
MAX_PROGRESS_IDS = 500
CHUNKS_PER_PAGE = 50


def _render(model_admin, request, template: str, title: str, **context):
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "title": title,
            **context,
        },
    )


def _check_view(model_admin, request):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied


def upload(model_admin, request):
    _check_view(model_admin, request)
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            tenant = form.cleaned_data["tenant"]
            files = form.cleaned_data["files"]
            title = form.cleaned_data["title"]
            uploads = services.documents_upload(
                tenant=tenant,
                files=[(f, _title_for(f, title, len(files))) for f in files],
                uploaded_by=request.user,
                keep_duplicate=form.cleaned_data["keep_duplicate"],
                source=Source.ADMIN,
            )
            for message, level in upload_messages(tenant, uploads):
                model_admin.message_user(request, message, level)
            if any(u.document is not None and not u.duplicate for u in uploads):
                return redirect("admin:documents_document_changelist")
            return redirect("admin:documents_document_upload")
    else:
        form = UploadForm(user=request.user)
    return _render(
        model_admin, request, "admin/documents/document/upload.html", "Upload documents", form=form
    )


def _title_for(uploaded, title: str, count: int) -> str:
    name = (uploaded.name or "upload").rsplit("/", 1)[-1]
    return title if count == 1 else (f"{title} — {name}" if title else "")


def upload_messages(tenant, uploads) -> list:
    """What the upload page tells staff: the files refused and why, the files already there
    (linked), the documents held, and how many were queued with their summed estimate."""
    out = [(u.error.message, messages.ERROR) for u in uploads if u.error is not None]
    already = [u for u in uploads if u.duplicate]
    if already:
        out.append(
            (
                format_html(
                    "Already in {}, not uploaded again: {}.",
                    tenant.name,
                    format_html_join(
                        ", ",
                        "{} (as {})",
                        ((u.name, document_link(u.document)) for u in already),
                    ),
                ),
                messages.WARNING,
            )
        )
    held = [u for u in uploads if u.held]
    for u in held:
        out.append(
            (
                format_html("{} is held: {}", document_link(u.document), u.document.held_reason),
                messages.WARNING,
            )
        )
    queued = [u for u in uploads if u.document is not None and not u.duplicate and not u.held]
    if queued:
        out.append(
            (
                ngettext(
                    "%(count)d document uploaded to %(tenant)s and queued for processing.",
                    "%(count)d documents uploaded to %(tenant)s and queued for processing.",
                    len(queued),
                )
                % {"count": len(queued), "tenant": tenant.name}
                + estimate_sentence([u.document for u in queued]),
                messages.SUCCESS,
            )
        )
    return out


def estimate_sentence(documents) -> str:
    complete = [d.estimate for d in documents if d.estimate.get("complete")]
    waiting = len(documents) - len(complete)
    parts = []
    if complete:
        ocr = sum(e.get("pages_to_ocr") or 0 for e in complete)
        tokens = sum(e.get("tokens") or 0 for e in complete)
        seconds = sum(e.get("seconds") or 0 for e in complete)
        cost = [e["cost_usd"] for e in complete if e.get("cost_usd") is not None]
        from_structure = (
            f" {FROM_STRUCTURE}"
            if any(d.estimate_from_structure and d.estimate.get("complete") for d in documents)
            else ""
        )
        parts.append(
            f" Estimate{from_structure}: {ocr} pages to OCR, {tokens:,} tokens"
            + (f", ${sum(cost):,.4f}" if cost else "")
            + f", about {round(seconds)} s of processing."
        )
    if waiting:
        parts.append(
            ngettext(
                " %(count)d is being estimated (its pages are read first).",
                " %(count)d are being estimated (their pages are read first).",
                waiting,
            )
            % {"count": waiting}
        )
    return "".join(parts)


def progress(model_admin, request):
    """JSON for the change list's auto-refresh: ``?ids=a,b,c`` -> each visible document's
    status, stage and percent. Ids of documents the user may not see are left out."""
    # admin_view already marks every admin page never_cache.
    _check_view(model_admin, request)
    if request.method != "GET":
        return HttpResponseNotAllowed(["GET"])
    ids = [i for i in request.GET.get("ids", "").split(",") if i][:MAX_PROGRESS_IDS]
    rows = selectors.documents_progress(user=request.user, ids=ids)
    return JsonResponse(
        {
            "documents": {row["id"]: row for row in rows},
            "processing": any(row["status"] == "processing" for row in rows),
        }
    )


def chunks(model_admin, request, object_id):
    _check_view(model_admin, request)
    # get_object goes through the scoped get_queryset: another tenant's document is a 404.
    document = model_admin.get_object(request, unquote(object_id))
    if document is None:
        raise Http404("No such document.")
    paginator = Paginator(document.chunks.order_by("index"), CHUNKS_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return _render(
        model_admin,
        request,
        "admin/documents/document/chunks.html",
        f"Chunks of {document.title}",
        document=document,
        page=page,
        original=document,
    )


def download(model_admin, request, object_id):
    """The document's file: streamed on local storage, a presigned redirect on S3."""
    _check_view(model_admin, request)
    # get_object goes through the scoped get_queryset: another tenant's document is a 404.
    document = model_admin.get_object(request, unquote(object_id))
    if document is None or not document.storage_key:
        raise Http404("No such document.")
    try:
        return storage.download_response(
            document.storage_key,
            filename=document.original_filename,
            content_type=document.content_type or "application/octet-stream",
        )
    except ApplicationError as exc:
        model_admin.message_user(request, exc.message, messages.ERROR)
        return redirect("admin:documents_document_change", document.pk)


def search(model_admin, request):
    _check_view(model_admin, request)
    hits = result = None
    # A first visit (no query yet) shows the empty form, not errors.
    form = SearchForm({"k": 10, **request.GET.dict()} if request.GET else None, user=request.user)
    if form.is_valid():
        try:
            result = chunks_search(
                user=request.user,
                tenant_id=form.cleaned_data["tenant"].pk,
                query=form.cleaned_data["q"],
                top_k=form.cleaned_data["k"],
                filters=form.filters(),
            )
            hits = [(hit, highlight(hit.text, result.terms)) for hit in result.hits]
        except ApplicationError as exc:
            model_admin.message_user(request, exc.message, messages.ERROR)
        except Exception as exc:  # noqa: BLE001 - the embedder or the store is down
            model_admin.message_user(
                request,
                f"The search could not run ({type(exc).__name__}: {exc}).",
                messages.ERROR,
            )
    return _render(
        model_admin,
        request,
        "admin/documents/document/search.html",
        "Search a tenant's chunks",
        form=form,
        hits=hits,
        result=result,
    )


def dashboard(model_admin, request):
    _check_view(model_admin, request)
    figures = selectors.dashboard_figures(user=request.user)
    health = broker.broker_health()
    user = request.user
    links = {}
    if user.has_perm("django_celery_beat.view_periodictask"):
        links["Periodic tasks"] = reverse("admin:django_celery_beat_periodictask_changelist")
    if user.has_perm("django_celery_results.view_taskresult"):
        links["Task results"] = reverse("admin:django_celery_results_taskresult_changelist")
    return _render(
        model_admin,
        request,
        "admin/documents/document/dashboard.html",
        "Ingestion dashboard",
        figures=figures,
        health=health,
        reconciliations=selectors.last_reconciliations(user),
        day_chart=bar_chart(figures.hourly_day, label_every=3),
        week_chart=bar_chart(figures.hourly_week, label_every=24),
        links=links,
        changelist_url=reverse("admin:documents_document_changelist"),
    )
