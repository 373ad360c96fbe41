"""Tables kept whole, as staff see them: a PDF with a ruled table over two pages and a Word
document with a table go through a real worker; the admin chunk list, the admin search and
the API search show each row on its own line under its Markdown header. Tenant B's staff
can open neither document nor its chunks, never find its rows, and uploading the same files
get documents of their own."""

from __future__ import annotations

import html
import io
import re

import docx
import pytest
from django.urls import reverse

from documents.models import Chunk, Document, Status
from documents.pipeline.tables import markdown_tables
from tests.documents.pipeline import makedocs
from tests.documents.test_end_to_end import upload
from tests.polling import wait_for_documents

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SEARCH = reverse("admin:documents_document_search")

PDF_HEADER = "| Vessel | Berth | Dues |"
SEPARATOR = "| --- | --- | --- |"
PDF_ROWS = [[f"Vessel {i}", f"Quay {i}", f"{1200 + i} NOK"] for i in range(30)]
PDF_ROWS[7] = ["Cormorant", "Quay 7", "1207 NOK"]  # the one word only this row holds
CORMORANT_ROW = "| Cormorant | Quay 7 | 1207 NOK |"

DOCX_HEADER = "| Species | Habitat | Count |"
DOCX_ROWS = [["Gannet", "Open sea", "88"], ["Puffin", "Sea cliffs", "412"], ["Eider", "Bay", "35"]]
PUFFIN_ROW = "| Puffin | Sea cliffs | 412 |"


def harbour_pdf(tmp_path):
    """26 rows fill the first page to its foot (more than one 256-token chunk of the local
    embedder); the table goes on overleaf without a header of its own."""
    header = ["Vessel", "Berth", "Dues"]
    return makedocs.ruled_table_pdf(
        tmp_path / "harbour-dues.pdf",
        [
            ("Harbour dues for the spring season.", [header, *PDF_ROWS[:25]], ""),
            ("", PDF_ROWS[25:], "Dues are payable at the harbour office."),
        ],
    )


def seabird_docx(tmp_path):
    path = tmp_path / "seabirds.docx"
    document = docx.Document()
    document.add_paragraph("Seabirds counted on the island in June.")
    table = document.add_table(rows=0, cols=3)
    for cells in [["Species", "Habitat", "Count"], *DOCX_ROWS]:
        for cell, text in zip(table.add_row().cells, cells, strict=True):
            cell.text = text
    document.add_paragraph("The count is repeated every summer.")
    document.save(path)
    return path


def assert_under_header(text: str, row: str, header: str) -> None:
    """``row`` is a row of a Markdown table in ``text`` whose header is ``header``."""
    headers = [
        text[slice(*table.header)]
        for table in markdown_tables(text)
        if any(text[slice(*span)] == row for span in table.rows)
    ]
    assert headers == [f"{header}\n{SEPARATOR}"], f"{row!r} is not under its header in:\n{text}"


def row_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("|") and line != SEPARATOR]


@pytest.fixture
def files(tmp_path) -> dict[str, bytes]:
    """The two files, written once: python-docx stamps the time it saves a document, so a
    second save is other bytes."""
    return {
        "harbour-dues.pdf": harbour_pdf(tmp_path).read_bytes(),
        "seabirds.docx": seabird_docx(tmp_path).read_bytes(),
    }


@pytest.fixture
def acme_tables(files, personas, api_for, celery_worker):
    """The PDF and the Word document uploaded by tenant A's staff through the API, processed
    by the real worker."""
    client = api_for(personas.staff_a)
    pdf = upload(client, "harbour-dues.pdf", files["harbour-dues.pdf"])
    word = upload(client, "seabirds.docx", files["seabirds.docx"])
    documents = wait_for_documents(
        [pdf["document_id"], word["document_id"]], worker=celery_worker, timeout=240
    )
    for document in documents:
        assert document.status == Status.COMPLETED, document.failure_message
    return documents


def chunk_texts_on_admin_page(client, document) -> list[str]:
    response = client.get(reverse("admin:documents_document_chunks", args=[document.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    return [
        html.unescape(text)
        for text in re.findall(r'<pre class="doc-chunk-text">(.*?)</pre>', body, re.S)
    ]


def test_the_admin_chunk_list_shows_every_row_under_its_markdown_header(
    client, personas, acme_tables
):
    pdf, word = acme_tables
    client.force_login(personas.staff_a)

    texts = chunk_texts_on_admin_page(client, pdf)
    assert texts == [c.text for c in Chunk.objects.filter(document=pdf).order_by("index")]
    with_rows = [text for text in texts if any(row_lines(text))]
    assert len(with_rows) >= 2, "the table should span chunks"
    seen = []
    for text in with_rows:
        rows = [line for line in row_lines(text) if line != PDF_HEADER]
        for row in rows:
            assert_under_header(text, row, PDF_HEADER)
        seen += rows
    # every row whole in a chunk, under the header repeated on page 2 and in later chunks
    expected = ["| " + " | ".join(cells) + " |" for cells in PDF_ROWS]
    assert sorted(set(seen)) == sorted(expected)

    (text,) = chunk_texts_on_admin_page(client, word)
    assert text.splitlines() == [
        "Seabirds counted on the island in June.",
        DOCX_HEADER,
        SEPARATOR,
        "| Gannet | Open sea | 88 |",
        PUFFIN_ROW,
        "| Eider | Bay | 35 |",
        "The count is repeated every summer.",
    ]


def test_the_admin_search_shows_the_row_intact_on_its_own_line_under_its_header(
    client, personas, acme_tables
):
    pdf, _ = acme_tables
    client.force_login(personas.staff_a)
    response = client.get(SEARCH, {"tenant": personas.tenant_a.pk, "q": "Cormorant"})
    assert response.status_code == 200
    hits = [hit for hit, _ in response.context["hits"] if CORMORANT_ROW in hit.text]
    assert hits and hits[0].document_id == str(pdf.pk)
    assert_under_header(hits[0].text, CORMORANT_ROW, PDF_HEADER)

    # the result's text is in the chunk list's <pre>, so the rows keep their own lines; the
    # matched word is marked inside the row
    body = response.content.decode()
    shown = re.findall(r'<pre class="doc-chunk-text">(.*?)</pre>', body, re.S)
    marked_row = "| <mark>Cormorant</mark> | Quay 7 | 1207 NOK |"
    (text,) = [t for t in shown if marked_row in t.splitlines()]
    assert_under_header(
        html.unescape(text).replace("<mark>", "").replace("</mark>", ""), CORMORANT_ROW, PDF_HEADER
    )


def test_the_api_search_answers_rows_under_their_header(personas, api_for, acme_tables):
    pdf, word = acme_tables
    client = api_for(personas.staff_a)
    for query, document, row, header in [
        ("Cormorant", pdf, CORMORANT_ROW, PDF_HEADER),
        ("Puffin", word, PUFFIN_ROW, DOCX_HEADER),
    ]:
        response = client.get("/api/search/", {"q": query})
        assert response.status_code == 200, response.content
        hits = [hit for hit in response.json()["results"] if row in hit["text"].splitlines()]
        assert hits and hits[0]["document_id"] == str(document.pk), response.json()
        assert_under_header(hits[0]["text"], row, header)


def test_another_tenants_staff_can_open_neither_document_nor_find_their_rows(
    client, personas, api_for, acme_tables
):
    pdf, word = acme_tables
    client.force_login(personas.staff_b)
    for document in (pdf, word):
        page = client.get(reverse("admin:documents_document_change", args=[document.pk]))
        assert page.status_code in (302, 404)
        assert document.title.encode() not in page.content
        chunks = client.get(reverse("admin:documents_document_chunks", args=[document.pk]))
        assert chunks.status_code == 404
    # the admin search in B's tenant finds nothing of A; A's tenant is not a choice for B
    for query, other_cells in (("Cormorant", "1207 NOK"), ("Puffin", "Sea cliffs")):
        response = client.get(SEARCH, {"tenant": personas.tenant_b.pk, "q": query})
        assert response.status_code == 200 and response.context["hits"] == []
        assert other_cells not in response.content.decode()
    crafted = client.get(SEARCH, {"tenant": personas.tenant_a.pk, "q": "Cormorant"})
    assert crafted.context["hits"] is None and "Select a valid choice" in crafted.content.decode()

    api = api_for(personas.staff_b)
    for document in (pdf, word):
        for url in (f"/api/documents/{document.pk}/", f"/api/documents/{document.pk}/download/"):
            response = api.get(url)
            assert response.status_code == 404, url
            assert response.json()["error"]["code"] == "not_found"
    for query in ("Cormorant", "Puffin"):
        body = api.get("/api/search/", {"q": query}).json()
        assert body["tenant"] == "globex" and body["results"] == []
    refused = api.get("/api/search/", {"q": "Cormorant", "tenant": "acme"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "not_a_member"


def test_another_tenant_uploading_the_same_files_gets_documents_of_its_own(
    files, personas, api_for, acme_tables, celery_worker
):
    pdf, word = acme_tables
    # the same bytes again in A's tenant are a duplicate of A's document...
    again = upload_answer(api_for(personas.staff_a), "harbour-dues.pdf", files)
    assert again.status_code == 200 and again.json()["document_id"] == str(pdf.pk)

    # ...in B's tenant they are a new document, processed on their own
    client = api_for(personas.staff_b)
    answers = [
        upload_answer(client, "harbour-dues.pdf", files),
        upload_answer(client, "seabirds.docx", files),
    ]
    for answer in answers:
        assert answer.status_code == 202, answer.content
        assert answer.json()["duplicate"] is False
    ids = [answer.json()["document_id"] for answer in answers]
    assert not {str(pdf.pk), str(word.pk)} & set(ids)
    theirs = wait_for_documents(ids, worker=celery_worker, timeout=240)
    for mine, other in zip((pdf, word), theirs, strict=True):
        assert other.status == Status.COMPLETED, other.failure_message
        assert other.tenant_id == personas.tenant_b.pk and other.sha256 == mine.sha256
        assert other.chunk_count == mine.chunk_count

    # each tenant's search answers its own document's row, never the other's, and lists no
    # copy in the other tenant
    mine_ids, their_ids = {str(pdf.pk), str(word.pk)}, set(ids)
    for user, own, other in (
        (personas.staff_a, mine_ids, their_ids),
        (personas.staff_b, their_ids, mine_ids),
    ):
        results = api_for(user).get("/api/search/", {"q": "Cormorant"}).json()["results"]
        assert {hit["document_id"] for hit in results} <= own
        places = {place["document_id"] for hit in results for place in hit["also_in"]}
        assert not places & other
        row_hits = [hit for hit in results if CORMORANT_ROW in hit["text"].splitlines()]
        assert row_hits, results
        assert_under_header(row_hits[0]["text"], CORMORANT_ROW, PDF_HEADER)
    assert Document.objects.filter(tenant=personas.tenant_a).count() == 2


def upload_answer(client, name: str, files: dict[str, bytes]):
    """The ingest endpoint's answer to one of the files, as it is (``upload`` expects a
    202)."""
    handle = io.BytesIO(files[name])
    handle.name = name
    return client.post("/api/ingest/", {"file": handle}, format="multipart")
