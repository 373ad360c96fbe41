"""Tables on PDF pages: the cheap check on the page's objects, pdfplumber's cells read with
PDFium, Markdown rows in the page text, a table continued overleaf, and the chunks made of
them. The PDFs are written by makedocs with rules drawn as separate lines, as word
processors draw them."""

from __future__ import annotations

import pypdfium2 as pdfium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pdfplumber.table import edges_to_intersections, intersections_to_cells

from documents.pipeline.aligned_tables import find_aligned_tables, looks_aligned
from documents.pipeline.chunk import split_text
from documents.pipeline.embedders.local import LocalEmbedder
from documents.pipeline.extract import PDF, extract_text
from documents.pipeline.table_cells import cells_from_intersections
from documents.pipeline.tables import find_ruled_tables, looks_like_table, markdown_tables
from documents.pipeline.types import ExtractOptions
from tests.corpus import AVAILABLE, CORPUS
from tests.documents.pipeline import makedocs

HEADER = ["Region", "Revenue", "Staff"]


def rows(start: int, stop: int) -> list[list[str]]:
    return [[f"Region {i}", f"{1000 + i} EUR", str(i)] for i in range(start, stop)]


def read(path, **options) -> list[str]:
    extraction = extract_text(path, content_type=PDF, options=ExtractOptions(**options))
    return [page.text for page in extraction.pages]


def test_a_ruled_table_becomes_markdown_rows_under_its_header_between_its_text(tmp_path):
    path = makedocs.ruled_table_pdf(
        tmp_path / "t.pdf", [("Sales by region.", [HEADER, *rows(0, 3)], "Figures unaudited.")]
    )
    (text,) = read(path)
    assert text.splitlines() == [
        "Sales by region.",
        "| Region | Revenue | Staff |",
        "| --- | --- | --- |",
        "| Region 0 | 1000 EUR | 0 |",
        "| Region 1 | 1001 EUR | 1 |",
        "| Region 2 | 1002 EUR | 2 |",
        "Figures unaudited.",
    ]


def test_with_tables_off_the_page_is_read_as_plain_text(tmp_path):
    path = makedocs.ruled_table_pdf(tmp_path / "t.pdf", [("", [HEADER, *rows(0, 3)], "")])
    (text,) = read(path, tables=False)
    assert "|" not in text
    assert "Region 2 1002 EUR" in text


def test_a_table_continued_overleaf_gets_its_header_again(tmp_path):
    # 26 rows of 24 pt fill the first page to its foot; the second page goes on without one
    pages = [("", [HEADER, *rows(0, 25)], ""), ("", rows(25, 28), "End of the list.")]
    first, second = read(makedocs.ruled_table_pdf(tmp_path / "t.pdf", pages))
    assert first.splitlines()[0] == "| Region | Revenue | Staff |"
    assert second.splitlines() == [
        "| Region | Revenue | Staff |",
        "| --- | --- | --- |",
        "| Region 25 | 1025 EUR | 25 |",
        "| Region 26 | 1026 EUR | 26 |",
        "| Region 27 | 1027 EUR | 27 |",
        "End of the list.",
    ]


def test_a_table_that_ends_mid_page_does_not_lend_its_header_to_the_next_page(tmp_path):
    other = [["Name", "City"], ["Annabel", "Oslo"], ["Bartholomew", "Bergen"]]
    pages = [("", [HEADER, *rows(0, 3)], "After."), ("", other, "")]
    _, second = read(makedocs.ruled_table_pdf(tmp_path / "t.pdf", pages))
    assert second.splitlines()[0] == "| Name | City |"


def test_pages_of_text_and_stray_rules_are_not_taken_for_tables(tmp_path):
    text = makedocs.text_pdf(tmp_path / "text.pdf", ["Just a paragraph of text.\nAnd more."])
    table = makedocs.ruled_table_pdf(tmp_path / "t.pdf", [("", [HEADER, *rows(0, 3)], "")])
    assert not looks_like_table(pdfium.PdfDocument(text)[0])
    assert looks_like_table(pdfium.PdfDocument(table)[0])
    # a single-column box of text (three rules of one extent, two sides) is checked by
    # pdfplumber, which finds one column: the page keeps its plain text
    boxed = makedocs.ruled_table_pdf(tmp_path / "box.pdf", [("", [["Note:"], ["Read me."]], "")])
    (boxed_text,) = read(boxed)
    assert "|" not in boxed_text


CITIES = [
    ["City", "Country", "Population"],
    ["Oslo", "Norway", "709 037"],
    ["Bergen", "Norway", "291 189"],
    ["Lyon", "France", "522 250"],
    ["Porto", "Portugal", "231 800"],
]


def test_a_table_without_rules_is_found_by_its_alignment_and_read_like_a_ruled_one(tmp_path):
    pages = [("Largest cities.", CITIES, "Source: national statistics.")]
    unruled = makedocs.ruled_table_pdf(tmp_path / "unruled.pdf", pages, ruled=False)
    ruled = makedocs.ruled_table_pdf(tmp_path / "ruled.pdf", pages)
    assert not looks_like_table(pdfium.PdfDocument(unruled)[0])
    assert looks_aligned(pdfium.PdfDocument(unruled)[0])
    assert read(unruled) == read(ruled)
    (text,) = read(unruled)
    assert text.splitlines() == [
        "Largest cities.",
        "| City | Country | Population |",
        "| --- | --- | --- |",
        "| Oslo | Norway | 709 037 |",
        "| Bergen | Norway | 291 189 |",
        "| Lyon | France | 522 250 |",
        "| Porto | Portugal | 231 800 |",
        "Source: national statistics.",
    ]


def test_columns_split_at_a_space_are_joined_back_into_one(tmp_path):
    # "Region 0", "Region 1"...: the digits line up in a column of their own, a space away
    path = makedocs.ruled_table_pdf(
        tmp_path / "t.pdf", [("", [HEADER, *rows(0, 4)], "")], ruled=False
    )
    (text,) = read(path)
    assert text.splitlines()[2:] == [f"| Region {i} | {1000 + i} EUR | {i} |" for i in range(4)]


def test_two_columns_of_text_are_not_a_table(tmp_path):
    sentence = "The quick brown fox jumps over the lazy dog near the river bank today."
    path = makedocs.ruled_table_pdf(
        tmp_path / "t.pdf", [("", [[sentence, sentence, sentence]] * 6, "")], ruled=False
    )
    (text,) = read(path)
    assert "|" not in text


@pytest.mark.skipif(not AVAILABLE, reason="the shared corpus is not here")
def test_corpus_pages_of_prose_columns_and_formulas_that_line_up_hold_no_aligned_table():
    candidates = 0
    for name, pages in [
        ("federal-register-2020-17221.pdf", range(15)),  # three columns of prose
        ("freeculture.pdf", range(337, 352)),  # an index in two columns, numbered lines
        ("ISO-IEC-29500-2.pdf", [2, 135]),  # a contents page, a bibliography
        ("GeoTopo-komprimiert.pdf", range(0, 117, 4)),  # formulas
    ]:
        pdf = pdfium.PdfDocument(CORPUS / name)
        for index in pages:
            page = pdf[index]
            if looks_aligned(page):
                candidates += 1
                found = find_aligned_tables(page, page.get_textpage(), page.get_height())
                assert found == [], (name, index + 1, found[0].rows[:3])
    # the first step lets some of them through: the second is what keeps them text
    assert candidates >= 10


@pytest.mark.skipif(not AVAILABLE, reason="the shared corpus is not here")
def test_a_corpus_precinct_bulletin_without_rules_becomes_rows():
    (text,) = read(CORPUS / "la-precinct-bulletin-2014-p1.pdf")
    lines = text.splitlines()
    assert "| NEEL KASHKARI | REP | 247 | NO | 142 | NO | 105 | NO | 216 |" in lines
    assert "| GAVIN NEWSOM | DEM | 64 |  |  |  |  |  |  |" in lines
    # nothing of the table is read a second time as text beside it
    assert not any(len(line) == 1 for line in lines)


def test_markdown_tables_are_found_with_the_offsets_of_their_header_and_rows():
    text = "Intro.\n| A | B |\n| --- | --- |\n| 1 | 2 |\n  | 3 | 4 |  \nAfter."
    (table,) = markdown_tables(text)
    assert text[slice(*table.header)] == "| A | B |\n| --- | --- |"
    assert [text[slice(*row)] for row in table.rows] == ["| 1 | 2 |", "| 3 | 4 |"]


def test_chunks_of_a_long_pdf_table_each_start_with_its_header(tmp_path):
    path = makedocs.ruled_table_pdf(tmp_path / "t.pdf", [("", [HEADER, *rows(0, 25)], "")])
    pages = list(extract_text(path, content_type=PDF, options=ExtractOptions()).pages)
    chunks = split_text(pages, counter=LocalEmbedder(), max_tokens=48, overlap=0)
    assert len(chunks) > 3
    header = "| Region | Revenue | Staff |\n| --- | --- | --- |"
    assert all(chunk.text.startswith(header) for chunk in chunks)
    body_rows = [line for c in chunks for line in c.text.splitlines()[2:]]
    assert body_rows == [f"| Region {i} | {1000 + i} EUR | {i} |" for i in range(25)]


def same_tables(ours, theirs) -> bool:
    """The same tables, rows and cells, each box within 0.05 pt: PDFium's coordinates are
    float32 turned by a matrix, pdfminer's float64."""

    def close(a, b) -> bool:
        if a is None or b is None:
            return a is b
        return all(abs(x - y) <= 0.05 for x, y in zip(a, b, strict=True))

    if len(ours) != len(theirs):
        return False
    for mine, other in zip(ours, theirs, strict=True):
        if not close(mine.bbox, other.bbox) or len(mine.rows) != len(other.rows):
            return False
        for row, other_row in zip(mine.rows, other.rows, strict=True):
            if len(row.cells) != len(other_row.cells):
                return False
            if not all(close(a, b) for a, b in zip(row.cells, other_row.cells, strict=True)):
                return False
    return True


def assert_same_tables_as_pdfplumbers_own_parse(path) -> int:
    """The tables pdfplumber's finder makes of PDFium's edges are the ones it makes of its
    own parse of every page that passes the cheap check; returns how many tables there were."""
    import pdfplumber

    found = 0
    pdf = pdfium.PdfDocument(path)
    try:
        with pdfplumber.open(path) as plumber:
            for index in range(len(pdf)):
                page = pdf[index]
                try:
                    if not looks_like_table(page) or page.get_rotation():
                        continue
                    x0, y0, x1, y1 = page.get_mediabox()
                    ours = find_ruled_tables(page, (x0, 0, x1, y1 - y0))
                    theirs = plumber.pages[index].find_tables()
                    assert same_tables(ours.tables, theirs), f"page {index + 1}"
                    found += len(theirs)
                finally:
                    page.close()
    finally:
        pdf.close()
    return found


def test_pdfiums_edges_give_the_tables_pdfplumber_finds_from_its_own_parse(tmp_path):
    path = makedocs.ruled_table_pdf(
        tmp_path / "t.pdf",
        [("Sales.", [HEADER, *rows(0, 3)], "End."), ("", [HEADER, *rows(3, 9)], "")],
    )
    assert assert_same_tables_as_pdfplumbers_own_parse(path) == 2


@pytest.mark.skipif(not AVAILABLE, reason="the shared corpus is not here")
def test_pdfiums_edges_give_pdfplumbers_tables_on_corpus_table_files():
    found = 0
    for name in ["table-curves-example.pdf", "pr-138-example.pdf", "issue-67-example.pdf"]:
        found += assert_same_tables_as_pdfplumbers_own_parse(CORPUS / name)
    assert found >= 20


def _edge(orientation: str, at: int, start: int, end: int) -> dict:
    if orientation == "h":
        box = {"x0": start, "x1": end, "top": at, "bottom": at}
    else:
        box = {"x0": at, "x1": at, "top": start, "bottom": end}
    return {**box, "orientation": orientation, "width": box["x1"] - box["x0"],
            "height": box["bottom"] - box["top"]}  # fmt: skip


_edges = st.lists(
    st.builds(
        lambda orientation, at, a, b: _edge(orientation, at, min(a, b), max(a, b) + 1),
        st.sampled_from("hv"),
        *(st.integers(0, 12) for _ in range(3)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(_edges)
def test_the_cell_search_finds_the_cells_pdfplumbers_own_search_finds(edges):
    """Rules on a coarse grid, so that they cross, touch, overlap and stop short often."""
    intersections = edges_to_intersections(edges, 1, 1)
    assert cells_from_intersections(intersections) == intersections_to_cells(intersections)


@pytest.mark.skipif(not AVAILABLE, reason="the shared corpus is not here")
def test_the_cell_search_finds_pdfplumbers_cells_on_corpus_table_pages():
    cells = 0
    for name in ["ISO-IEC-29500-2.pdf", "chelsea_pdta.pdf", "ca-warn-report.pdf"]:
        pdf = pdfium.PdfDocument(CORPUS / name)
        try:
            for index in range(len(pdf)):
                page = pdf[index]
                if not page.get_rotation() and looks_like_table(page):
                    x0, y0, x1, y1 = page.get_mediabox()
                    finder = find_ruled_tables(page, (x0, 0, x1, y1 - y0))
                    assert finder.cells == intersections_to_cells(finder.intersections), (
                        f"{name} page {index + 1}"
                    )
                    cells += len(finder.cells)
                page.close()
        finally:
            pdf.close()
    assert cells > 5_000
