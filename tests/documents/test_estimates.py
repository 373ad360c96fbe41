"""The estimate from Django's side (documents/estimates.py): the configured embedder's
rates, the stage rates measured from recent documents, and what the runner records --
the estimating stage that replaces the estimate an upload made from the structure, the actuals to
compare with, and the text fingerprint that finds the same text in another file."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from documents import estimates, processing, services
from documents.models import Document, Stage, Status
from documents.pipeline.estimate_rates import DEFAULT_STAGE_RATES, MEASURED_TOKEN_RATES
from documents.selectors import near_duplicates
from tests.documents.pipeline import makedocs
from tests.factories import make_document

pytestmark = pytest.mark.django_db

PROSE = (
    "The lighthouse keeper climbed the stairs every evening. He lit the lamp and watched "
    "the ships pass the rocks. In winter the storms were fierce and the sea was grey. "
) * 8


@pytest.fixture
def local_clients(settings, tmp_path):
    settings.EMBEDDER = "local"
    settings.VECTOR_STORE = "lancedb"
    settings.LANCEDB_URI = str(tmp_path / "lancedb")


@pytest.fixture(autouse=True)
def fresh_rates():
    cache.clear()
    yield
    cache.clear()


def upload(tenant, name: str, content: bytes, **kwargs) -> Document:
    return services.document_create(
        tenant=tenant, uploaded_file=SimpleUploadedFile(name, content), **kwargs
    )


def attempt(document) -> processing.Outcome:
    return processing.process_document(str(document.pk), task_id="t1", retries=0, max_retries=3)


def test_the_token_rates_follow_the_configured_chunk_size_batch_and_price(settings):
    settings.EMBEDDER = "local"
    settings.CHUNK_TOKENS = {**settings.CHUNK_TOKENS, "local": 128}
    settings.LOCAL_EMBEDDING_BATCH_SIZE = 32
    rates = estimates.token_rates()
    measured = MEASURED_TOKEN_RATES["local"]
    assert rates.tokens_per_chunk == pytest.approx(measured.tokens_per_chunk / 2)
    assert rates.batch_size == 32 and rates.price_per_million is None


def test_without_completed_documents_the_stage_rates_are_the_defaults(personas):
    assert estimates.stage_rates() == DEFAULT_STAGE_RATES


def test_the_stage_rates_come_from_the_latest_completed_documents(personas, settings):
    settings.ESTIMATE_RECENT_DOCUMENTS = 2
    timings = {"embedding": {"started": "x", "seconds": 3.0}, "extracting": {"seconds": 1.0}}
    for n, chunks in enumerate([10, 30]):
        make_document(
            personas.tenant_a,
            n=n,
            status=Status.COMPLETED,
            stage_timings=timings,
            actuals={"pages": 10, "ocr_pages": 0, "tokens": 1000, "chunks": chunks},
        )
    # Older, and beyond the two latest: not counted.
    old = make_document(
        personas.tenant_a,
        n=9,
        status=Status.COMPLETED,
        stage_timings=timings,
        actuals={"pages": 1, "ocr_pages": 0, "tokens": 1, "chunks": 1},
    )
    Document.objects.filter(pk=old.pk).update(created_at=old.created_at.replace(year=2020))
    rates = estimates.stage_rates()
    assert rates.documents == 2
    assert rates.embedding_per_chunk == pytest.approx(6.0 / 40)
    assert rates.extracting_per_text_page == pytest.approx(2.0 / 20)


def test_a_pdf_is_estimated_in_the_worker_and_its_actuals_recorded(
    personas, local_clients, isolated_queue, tmp_path
):
    path = makedocs.text_pdf(tmp_path / "a.pdf", [PROSE, PROSE, None])
    document = upload(personas.tenant_a, "a.pdf", path.read_bytes())
    # At upload, from the structure: the text pages are known, their text is not read yet.
    at_upload = document.estimate
    assert at_upload["complete"] and at_upload["depth"] == "structure"
    assert (at_upload["pages"], at_upload["pages_to_ocr"]) == (3, 0) and at_upload["tokens"] > 0
    assert attempt(document).error is None
    document.refresh_from_db()
    assert document.status == Status.COMPLETED
    assert Stage.ESTIMATING in document.stage_timings
    guess, actual = document.estimate, document.actuals
    # The worker's estimating stage replaced it with the estimate from every page.
    assert guess["complete"] and guess["depth"] == "full"
    assert document.preflight["facts"]["depth"] == "full"
    assert (guess["pages"], guess["pages_to_ocr"]) == (3, 0)
    assert actual["pages"] == 3 and actual["ocr_pages"] == 0
    assert actual["chunks"] == document.chunk_count == document.chunks.count()
    assert actual["tokens"] == sum(document.chunks.values_list("token_count", flat=True))
    assert actual["seconds"] > 0
    labels = [label for label, _, _ in estimates.comparison(document)]
    assert labels[:3] == ["Pages", "Pages read with OCR", "Tokens"]


def test_a_document_estimated_at_upload_has_no_estimating_stage(
    personas, local_clients, isolated_queue
):
    document = upload(personas.tenant_a, "story.txt", PROSE.encode())
    attempt(document)
    document.refresh_from_db()
    assert document.status == Status.COMPLETED
    assert Stage.ESTIMATING not in document.stage_timings


def test_the_same_text_in_a_different_file_is_a_near_duplicate_within_the_tenant_only(
    personas, local_clients, isolated_queue, tmp_path
):
    text_pdf = makedocs.text_pdf(tmp_path / "a.pdf", [PROSE])
    first = upload(personas.tenant_a, "a.pdf", text_pdf.read_bytes())
    # The same words, other bytes: a text file whose line breaks and case differ.
    second = upload(personas.tenant_a, "a.txt", PROSE.upper().replace(". ", ".\n").encode())
    other = upload(personas.tenant_b, "b.pdf", text_pdf.read_bytes())
    different = upload(personas.tenant_a, "c.txt", (PROSE + " One more sentence.").encode())
    for document in (first, second, other, different):
        assert attempt(document).error is None
        document.refresh_from_db()
    assert first.text_fingerprint and first.text_fingerprint == second.text_fingerprint
    assert list(near_duplicates(first)) == [second]
    assert list(near_duplicates(second)) == [first]
    # Tenant B's copy has the same fingerprint, but neither side ever sees the other.
    assert other.text_fingerprint == first.text_fingerprint
    assert list(near_duplicates(other)) == []
    assert list(near_duplicates(different)) == []


def test_totals_sum_the_complete_estimates_and_count_the_rest(personas, isolated_queue, tmp_path):
    one = upload(personas.tenant_a, "a.txt", PROSE.encode())
    two = upload(personas.tenant_a, "b.txt", (PROSE * 2).encode())
    pdf = makedocs.text_pdf(tmp_path / "c.pdf", [PROSE])
    three = upload(personas.tenant_a, "c.pdf", pdf.read_bytes())  # estimated from its structure
    # A file whose structure could not be read: only its page count until the worker's pass.
    make_document(personas.tenant_a, n=5, preflight={"estimate": {"complete": False, "pages": 5}})
    total = estimates.totals(Document.objects.all())
    assert total["documents"] == 3 and total["estimating"] == 1
    assert total["tokens"] == sum(d.estimate["tokens"] for d in (one, two, three))
    assert total["pages"] == 3


def test_the_expected_finish_is_the_start_or_now_plus_the_estimated_seconds(personas):
    from datetime import timedelta

    from django.utils import timezone

    now = timezone.now()
    guess = {"estimate": {"complete": True, "seconds": 90.0}}
    running = make_document(
        personas.tenant_a,
        stage=Stage.EMBEDDING,
        started_at=now - timedelta(seconds=30),
        preflight=guess,
    )
    queued = make_document(personas.tenant_a, n=1, preflight=guess)
    held = make_document(personas.tenant_a, n=2, stage=Stage.HELD, preflight={**guess, "held": "x"})
    done = make_document(personas.tenant_a, n=3, status=Status.COMPLETED, preflight=guess)
    estimating = make_document(personas.tenant_a, n=4, preflight={"estimate": {"complete": False}})
    assert estimates.expected_finish(running, now=now) == running.started_at + timedelta(seconds=90)
    assert estimates.expected_finish(queued, now=now) == now + timedelta(seconds=90)
    assert [estimates.expected_finish(d, now=now) for d in (held, done, estimating)] == [None] * 3
    assert held.held_reason == "x"
    held.stage = Stage.QUEUED  # released: no longer held, whatever the preflight says
    assert held.held_reason == ""
