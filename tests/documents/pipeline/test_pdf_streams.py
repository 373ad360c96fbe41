"""The inflated size of the streams a PDF page draws, measured before PDFium loads the page,
and the pixels of the images a page to OCR holds, before it is rendered. PDFs are written by
hand with the hostile corpus's writer; the decoders are checked against qpdf's."""

import base64
import binascii
import zlib
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from documents.errors import BudgetExceeded, FailureKind
from documents.pipeline.extract import PDF, extract_text
from documents.pipeline.pdf_streams import _decoded, _filters
from documents.pipeline.types import ExtractOptions
from tests.hostile.make_hostile import MIB, repeated_deflate, write_pdf, zlib_stream

TEXT = b"BT /F1 24 Tf 72 720 Td (A page with a proper text layer.) Tj ET\n"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def one_page(path: Path, content: tuple[bytes, object], *extra: object, resources=b"") -> Path:
    """A one-page PDF: object 4 is the content stream, 5 the font, 6... ``extra``."""
    return write_pdf(
        path,
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 5 0 R >> " + resources + b" >> /Contents 4 0 R >>",
            content,
            FONT,
            *extra,
        ],
    )


def flate(head: bytes, block: bytes, times: int) -> tuple[bytes, object]:
    data = repeated_deflate(head, block, times, b"")
    length = data.compressed_size + 6
    return f"<< /Length {length} /Filter /FlateDecode >>".encode(), zlib_stream(data)


def failure(path: Path, **options) -> BudgetExceeded:
    with pytest.raises(BudgetExceeded) as caught:
        extraction = extract_text(path, content_type=PDF, options=ExtractOptions(**options))
        list(extraction.pages)
    return caught.value


# --- streams -------------------------------------------------------------------------------------


def test_a_content_stream_that_inflates_past_the_limit_is_refused(tmp_path):
    path = one_page(tmp_path / "a.pdf", flate(TEXT, b"q Q\n" * (MIB // 4), 3))
    error = failure(path, max_pdf_stream_bytes=2_000_000)
    assert error.kind == FailureKind.PDF_STREAM_TOO_LARGE
    assert str(error).startswith("Page 1 of this PDF has a compressed content stream that ")
    assert "inflates past the limit of 2.0 MB per stream (2.1 MB when reading stopped)" in str(
        error
    )


def test_the_same_page_under_the_limit_is_read(tmp_path):
    path = one_page(tmp_path / "a.pdf", flate(TEXT, b"q Q\n" * (MIB // 4), 3))
    extraction = extract_text(path, content_type=PDF, options=ExtractOptions())
    assert [page.text for page in extraction.pages] == ["A page with a proper text layer."]


def test_a_form_drawn_by_the_page_is_measured_too(tmp_path):
    form_dict, form_data = flate(b"", b"q Q\n" * (MIB // 4), 3)
    form = (
        form_dict.replace(b"<<", b"<< /Type /XObject /Subtype /Form /BBox [0 0 9 9]"),
        form_data,
    )
    content = TEXT + b"/X0 Do"
    path = one_page(
        tmp_path / "a.pdf",
        (f"<< /Length {len(content)} >>".encode(), [content]),
        form,
        resources=b"/XObject << /X0 6 0 R >>",
    )
    error = failure(path, max_pdf_stream_bytes=2_000_000)
    assert error.kind == FailureKind.PDF_STREAM_TOO_LARGE
    assert "compressed form that inflates" in str(error)


def test_a_stream_compressed_twice_is_inflated_twice_in_pieces(tmp_path):
    # Deflate of deflate: 3 MiB of "q Q" is ~9 KB once and far less twice, so the bound
    # from its raw length (x 1032 x 1032) is what makes it be measured at all.
    once = b"".join(zlib_stream(repeated_deflate(TEXT, b"q Q\n" * (MIB // 4), 3, b"")))
    twice = zlib.compress(once, 9)
    stream = (f"<< /Length {len(twice)} /Filter [/FlateDecode /FlateDecode] >>".encode(), [twice])
    error = failure(one_page(tmp_path / "a.pdf", stream), max_pdf_stream_bytes=2_000_000)
    assert error.kind == FailureKind.PDF_STREAM_TOO_LARGE


def test_a_page_that_draws_a_form_that_draws_itself_is_read(tmp_path):
    content = TEXT + b"/X0 Do"
    form = b"/X0 Do"
    path = one_page(
        tmp_path / "a.pdf",
        (f"<< /Length {len(content)} >>".encode(), [content]),
        (
            b"<< /Type /XObject /Subtype /Form /BBox [0 0 9 9] /Resources << /XObject "
            b"<< /X0 6 0 R >> >> /Length " + str(len(form)).encode() + b" >>",
            [form],
        ),
        resources=b"/XObject << /X0 6 0 R >>",
    )
    extraction = extract_text(path, content_type=PDF, options=ExtractOptions())
    assert [page.text for page in extraction.pages] == ["A page with a proper text layer."]


# --- images on pages to OCR ----------------------------------------------------------------------


def image_page(path: Path, side: int, content: bytes) -> Path:
    row = bytes(side // 8)
    rows = max(1, MIB // len(row))
    pixels = repeated_deflate(b"", row * rows, side // rows, row * (side % rows))
    dictionary = (
        f"<< /Type /XObject /Subtype /Image /Width {side} /Height {side} /ColorSpace "
        "/DeviceGray /BitsPerComponent 1 /Filter /FlateDecode "
        f"/Length {pixels.compressed_size + 6} >>"
    )
    image = (dictionary.encode(), zlib_stream(pixels))
    return one_page(
        path,
        (f"<< /Length {len(content)} >>".encode(), [content]),
        image,
        resources=b"/XObject << /Im0 6 0 R >>",
    )


def test_an_image_too_large_on_a_page_to_ocr_is_refused_before_rendering(tmp_path):
    path = image_page(tmp_path / "a.pdf", 20_000, b"q 612 0 0 792 0 0 cm /Im0 Do Q")
    error = failure(path)  # the defaults: 400 million pixels against 100 million
    assert error.kind == FailureKind.IMAGE_TOO_LARGE
    assert str(error).startswith("Page 1 of this PDF holds an image that is 20,000 x 20,000")
    assert "more than the limit of 100 million pixels" in str(error)


def test_the_same_image_on_a_page_with_a_text_layer_is_not_rendered_so_not_refused(tmp_path):
    path = image_page(tmp_path / "a.pdf", 20_000, TEXT + b"q 612 0 0 792 0 0 cm /Im0 Do Q")
    extraction = extract_text(path, content_type=PDF, options=ExtractOptions())
    assert [page.text for page in extraction.pages] == ["A page with a proper text layer."]


# --- the decoders, against qpdf's -----------------------------------------------------------------


_OWNER = pikepdf.new()  # a stream lives only as long as its PDF


def stream_with(raw: bytes, filters: list[str], parms=None) -> pikepdf.Stream:
    stream = pikepdf.Stream(_OWNER, raw)
    stream.Filter = pikepdf.Array([pikepdf.Name(f) for f in filters])
    if parms is not None:
        stream.DecodeParms = parms
    return stream


def ours(stream: pikepdf.Stream) -> bytes:
    return b"".join(_decoded(stream, _filters(stream)))


def test_lzw_decodes_the_example_of_the_pdf_specification():
    # PDF 32000-1, 7.4.4.2: "-----A---B" encodes to these nine bytes.
    stream = stream_with(bytes.fromhex("800B6050220C0C8501"), ["/LZWDecode"])
    assert ours(stream) == b"-----A---B"
    assert ours(stream) == stream.read_bytes()


def test_lzw_with_codes_of_every_width_decodes_as_qpdf_does(tmp_path):
    # qpdf has no LZW encoder; libtiff's (through Pillow) writes TIFF strips in the same
    # code (MSB first, early change), so a strip of varied pixels makes codes of 9 to 12 bits.
    image = Image.new("L", (200, 200))
    image.putdata([(x * y + x // 3) % 251 for y in range(200) for x in range(200)])
    image.save(tmp_path / "a.tif", compression="tiff_lzw")
    with Image.open(tmp_path / "a.tif") as tiff:
        (offset,), (length,) = tiff.tag_v2[273], tiff.tag_v2[279]
    raw = (tmp_path / "a.tif").read_bytes()[offset : offset + length]
    stream = stream_with(raw, ["/LZWDecode"])
    assert stream.read_bytes() == image.tobytes()
    assert ours(stream) == image.tobytes()


def test_run_length_and_ascii_armour_decode_as_qpdf_does():
    run_length = bytes([2]) + b"abc" + bytes([253]) + b"x" + bytes([0]) + b"!" + bytes([128])
    assert ours(stream_with(run_length, ["/RunLengthDecode"])) == b"abcxxxx!"
    data = b"The quick brown fox " * 50
    hexed = binascii.hexlify(zlib.compress(data)) + b">"
    stream = stream_with(hexed, ["/ASCIIHexDecode", "/FlateDecode"])
    assert ours(stream) == stream.read_bytes() == data
    a85 = base64.a85encode(zlib.compress(data)) + b"~>"
    stream = stream_with(a85, ["/ASCII85Decode", "/FlateDecode"])
    assert ours(stream) == stream.read_bytes() == data
