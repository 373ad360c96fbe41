"""The package reader: parts found through relationships, every part held to the ZIP budgets
from the directory and again while it is inflated. Archives are written with the hostile
corpus's hand-made ZIP writer, which can make a directory lie."""

import io
import zlib
from pathlib import Path

import pytest

from documents.errors import BudgetExceeded, FailureKind
from documents.pipeline.ooxml import (
    DirectoryMismatch,
    DtdDeclared,
    Package,
    PackageError,
    word_main_document,
)
from tests.documents.pipeline import makedocs
from tests.hostile.make_hostile import (
    Deflated,
    ZipEntry,
    plain_deflate,
    repeated_deflate,
    write_zip,
)

MB = 1_000_000


def package(path: Path, *, max_part_bytes: int = 10 * MB, max_ratio: float = 100) -> Package:
    return Package(path, max_part_bytes=max_part_bytes, max_ratio=max_ratio)


def text_of(size: int) -> bytes:
    """Text that compresses like prose (about 3:1), ``size`` bytes of it."""
    words = [f"word{n * 7919 % 10007}" for n in range(size // 4)]
    return " ".join(words).encode()[:size]


def undecodable(size: int, compressed: int) -> Deflated:
    """An entry whose data is not deflate at all: inflating it fails at the first byte, so
    an error about its size proves the size was judged without inflating it."""
    return Deflated([(b"\xff" * compressed, 1)], size, 0, 0)


def test_a_part_over_the_size_limit_is_refused_from_the_directory_without_inflating(tmp_path):
    path = write_zip(tmp_path / "a.zip", [ZipEntry("word/big.xml", undecodable(3 * MB, MB))])
    with package(path, max_part_bytes=2 * MB) as archive, pytest.raises(BudgetExceeded) as caught:
        archive.check_directory()
    assert caught.value.kind == FailureKind.ZIP_PART_TOO_LARGE
    message = str(caught.value)
    assert "word/big.xml" in message
    assert "is 3.0 MB uncompressed" in message
    assert "limit of 2.0 MB per part" in message


def test_a_part_compressed_too_well_is_refused_from_the_directory_without_inflating(tmp_path):
    path = write_zip(tmp_path / "a.zip", [ZipEntry("word/bomb.xml", undecodable(5 * MB, 10_000))])
    with package(path, max_ratio=100) as archive, pytest.raises(BudgetExceeded) as caught:
        archive.check_directory()
    assert caught.value.kind == FailureKind.ZIP_RATIO_TOO_HIGH
    message = str(caught.value)
    assert "from 10 KB to 5.0 MB" in message
    assert "ratio of 500 to 1" in message
    assert "limit of 100 to 1" in message


def test_a_small_part_may_compress_as_well_as_it_likes(tmp_path):
    spaces = repeated_deflate(b"", b" " * 1000, 900, b"")  # 900 KB of spaces
    path = write_zip(tmp_path / "a.zip", [ZipEntry("word/spaces.xml", spaces)])
    with package(path, max_ratio=10) as archive:
        archive.check_directory()
        assert len(archive.read("word/spaces.xml")) == 900_000


def test_a_part_that_inflates_past_what_its_directory_says_stops_there(tmp_path):
    # 200 MB of zeros declared as 4 KB: the directory check passes, the read does not.
    zeros = repeated_deflate(b"", bytes(MB), 200, b"")
    path = write_zip(tmp_path / "a.zip", [ZipEntry("word/x.xml", zeros, declared_size=4096)])
    with package(path, max_part_bytes=500 * MB, max_ratio=10_000) as archive:
        archive.check_directory()
        with pytest.raises(DirectoryMismatch) as caught:
            archive.read("word/x.xml")
    assert caught.value.declared == 4096
    assert 4096 < caught.value.measured <= 4096 + 128 * 1024  # within a read of the claim


def test_opening_a_part_checks_its_entry_even_when_the_directory_was_not_checked(tmp_path):
    # As when an upload is sniffed: only the parts read are checked, each before it is.
    big = ZipEntry("word/big.xml", undecodable(3 * MB, MB))
    bomb = ZipEntry("word/bomb.xml", undecodable(1_500_000, 10_000))
    path = write_zip(tmp_path / "a.zip", [big, bomb])
    with package(path, max_part_bytes=2 * MB, max_ratio=100) as archive:
        with pytest.raises(BudgetExceeded) as too_large:
            archive.read("word/big.xml")
        with pytest.raises(BudgetExceeded) as too_compressed:
            archive.read("word/bomb.xml")
    assert too_large.value.kind == FailureKind.ZIP_PART_TOO_LARGE
    assert too_compressed.value.kind == FailureKind.ZIP_RATIO_TOO_HIGH


def test_a_part_whose_data_does_not_match_its_crc_is_damaged(tmp_path):
    good = plain_deflate(b"<a>hello</a>")
    path = write_zip(
        tmp_path / "a.zip",
        [ZipEntry("x.xml", Deflated(good.pieces, good.size, good.crc32 ^ 1, 0))],
    )
    with package(path) as archive, pytest.raises(PackageError):
        archive.read("x.xml")


def test_a_part_declaring_a_dtd_is_refused_before_its_entities_are_touched(tmp_path):
    xml = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'
    path = write_zip(tmp_path / "a.zip", [ZipEntry("a.xml", plain_deflate(xml))])
    with package(path) as archive, pytest.raises(DtdDeclared):
        archive.parse("a.xml")


@pytest.mark.parametrize("name", ["word/body-text.xml", "word/content.xml"])
def test_the_main_part_is_found_through_the_relationships_whatever_its_name(tmp_path, name):
    source = makedocs.word_docx(tmp_path / "a.docx")
    path = makedocs.renamed_main_part(source, tmp_path / "renamed.docx", name)
    with package(path) as archive:
        assert word_main_document(archive) == name
        headers = archive.related(name, "header")
        assert headers and archive.has(headers[0])


def test_relationship_targets_resolve_relative_absolute_and_percent_encoded(tmp_path):
    rels = (
        b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Id="a" Type="http://x/header" Target="../common/head%20er.xml"/>'
        b'<Relationship Id="b" Type="http://x/footer" Target="/word/foot.xml"/>'
        b'<Relationship Id="c" Type="http://x/image" Target="http://example.com/x.png" '
        b'TargetMode="External"/></Relationships>'
    )
    entries = [
        ZipEntry("word/_rels/main.xml.rels", plain_deflate(rels)),
        ZipEntry("word/main.xml", plain_deflate(b"<a/>")),
        ZipEntry("common/head er.xml", plain_deflate(b"<a/>")),
        ZipEntry("word/foot.xml", plain_deflate(b"<a/>")),
    ]
    with package(write_zip(tmp_path / "a.zip", entries)) as archive:
        found = {rel.kind: rel.target for rel in archive.relationships("word/main.xml")}
    assert found == {"header": "common/head er.xml", "footer": "word/foot.xml"}


def test_a_spreadsheet_package_has_no_word_main_part(tmp_path):
    buffer = io.BytesIO(makedocs.spreadsheet_package())
    with package(buffer) as archive:
        assert archive.main_document() == "xl/workbook.xml"
        assert word_main_document(archive) is None


def test_not_a_zip_is_a_package_error(tmp_path):
    path = tmp_path / "a.docx"
    path.write_bytes(zlib.compress(b"not a zip"))
    with pytest.raises(PackageError):
        package(path)


def test_a_part_parsed_whole_is_held_to_a_quarter_of_the_part_budget(tmp_path):
    # Streamed, the main part may use the whole budget; a part parsed into one tree may not.
    xml = b"<numbering>" + b"<num/>" * 500_000 + b"</numbering>"  # 3 MB
    path = write_zip(tmp_path / "a.zip", [ZipEntry("word/numbering.xml", plain_deflate(xml))])
    with package(path, max_part_bytes=8 * MB, max_ratio=10_000) as archive:
        archive.check_directory()
        assert len(archive.read("word/numbering.xml")) == len(xml)
        with pytest.raises(BudgetExceeded) as caught:
            archive.parse("word/numbering.xml")
    assert caught.value.kind == FailureKind.ZIP_PART_TOO_LARGE
    assert "is 3.0 MB uncompressed, more than the limit of 2.0 MB for a part read whole" in str(
        caught.value
    )
