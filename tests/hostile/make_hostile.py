"""Write the hostile corpus: files made to exhaust a document reader's memory or time.

    .venv/bin/python tests/hostile/make_hostile.py OUTPUT_DIR [NAME ...]

One function per file; each takes the path to write and returns it. Nothing here is kept in
the repository: the tests and bench/bench_hostile.py write the files when they run.

Generation is fast and bounded in memory even for the bombs that inflate to gigabytes: the
compressed form is written, never the inflated one. Deflate (ZIP parts, PDF FlateDecode
streams, PNG IDAT) is built from one block compressed once and ending on a full flush, which
empties the compressor's history, so the same compressed bytes can be written again and again
and still be one valid stream; the checksums of the repetitions (CRC-32 for ZIP, Adler-32 for
zlib streams) are computed with the combine formulas instead of over the inflated bytes. ZIP
archives and PDFs are written by hand so a directory can be made to lie about a part's size.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

MIB = 1 << 20
GIB = 1 << 30

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_DOC_HEAD = (
    f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document xmlns:w="{W}"><w:body>'
).encode()
_DOC_TAIL = b"<w:sectPr/></w:body></w:document>"
_TINY_PARAGRAPH = b"<w:p><w:r><w:t>a</w:t></w:r></w:p>"


# --- checksums of repeated data ------------------------------------------------------------------


def _gf2_times(matrix: list[int], vector: int) -> int:
    total = 0
    i = 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A + B from the CRC-32 of A, of B and the length of B (zlib's algorithm)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)  # first pass: one zero byte
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def adler32_combine(adler1: int, adler2: int, len2: int) -> int:
    """Adler-32 of A + B: A's sums carried over B's length."""
    base = 65521
    a1, b1 = adler1 & 0xFFFF, adler1 >> 16
    a2, b2 = adler2 & 0xFFFF, adler2 >> 16
    a = (a1 + a2 - 1) % base
    b = (b1 + b2 + len2 * (a1 - 1)) % base
    return (b << 16) | a


def _repeat_checksum(value: int, length: int, times: int, combine: Callable) -> int:
    """The checksum of ``times`` copies of a block whose checksum is ``value``, by doubling."""
    result, result_len = None, 0
    power, power_len = value, length
    while times:
        if times & 1:
            result = power if result is None else combine(result, power, power_len)
            result_len += power_len
        times >>= 1
        if times:
            power = combine(power, power, power_len)
            power_len *= 2
    return result


# --- deflate streams that repeat one block -------------------------------------------------------


@dataclass
class Deflated:
    """A raw deflate stream, given as the pieces to write in order, with the length, CRC-32
    and Adler-32 of what it inflates to."""

    pieces: list[tuple[bytes, int]]  # (compressed bytes, how many times to write them)
    size: int
    crc32: int
    adler32: int

    @property
    def compressed_size(self) -> int:
        return sum(len(data) * times for data, times in self.pieces)

    def chunks(self) -> Iterator[bytes]:
        for data, times in self.pieces:
            for _ in range(times):
                yield data


def _flushed(data: bytes, *, final: bool = False, level: int = 9) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(
        zlib.Z_FINISH if final else zlib.Z_FULL_FLUSH
    )


def repeated_deflate(head: bytes, block: bytes, times: int, tail: bytes) -> Deflated:
    """``head + block * times + tail``, deflated without ever holding the inflated data."""
    crc = zlib.crc32(head)
    adler = zlib.adler32(head)
    if times:
        crc = crc32_combine(
            crc,
            _repeat_checksum(zlib.crc32(block), len(block), times, crc32_combine),
            len(block) * times,
        )
        adler = adler32_combine(
            adler,
            _repeat_checksum(zlib.adler32(block), len(block), times, adler32_combine),
            len(block) * times,
        )
    crc = crc32_combine(crc, zlib.crc32(tail), len(tail))
    adler = adler32_combine(adler, zlib.adler32(tail), len(tail))
    pieces = [(_flushed(head), 1), (_flushed(block), times), (_flushed(tail, final=True), 1)]
    return Deflated(pieces, len(head) + len(block) * times + len(tail), crc, adler)


def plain_deflate(data: bytes, level: int = 9) -> Deflated:
    return Deflated(
        [(_flushed(data, final=True, level=level), 1)],
        len(data),
        zlib.crc32(data),
        zlib.adler32(data),
    )


def zlib_stream(deflated: Deflated) -> Iterator[bytes]:
    """The deflate stream wrapped as zlib (RFC 1950), what PDF FlateDecode and PNG use."""
    yield b"\x78\xda"
    yield from deflated.chunks()
    yield struct.pack(">I", deflated.adler32)


# --- ZIP, written by hand so the directory can lie -----------------------------------------------


@dataclass
class ZipEntry:
    name: str
    data: Deflated
    declared_size: int | None = None  # the inflated size the headers claim (None: the truth)


def write_zip(path: Path, entries: Iterable[ZipEntry]) -> Path:
    central = bytearray()
    count = 0
    with open(path, "wb") as out:
        for entry in entries:
            name = entry.name.encode()
            size = entry.data.size if entry.declared_size is None else entry.declared_size
            fields = (20, 0, 8, 0, 0x21, entry.data.crc32, entry.data.compressed_size, size)
            offset = out.tell()
            out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, *fields, len(name), 0) + name)
            for chunk in entry.data.chunks():
                out.write(chunk)
            central += struct.pack(
                "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, *fields, len(name), 0, 0, 0, 0, 0, offset
            )
            central += name
            count += 1
        start = out.tell()
        out.write(central)
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), start, 0))
    return Path(path)


_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" '
    b'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_PACKAGE_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)


def _word_package(path: Path, document: ZipEntry, *extra: ZipEntry) -> Path:
    """The smallest Word package Word opens: content types, relationships, the main part."""
    entries = [
        ZipEntry("[Content_Types].xml", plain_deflate(_CONTENT_TYPES)),
        ZipEntry("_rels/.rels", plain_deflate(_PACKAGE_RELS)),
        document,
        *extra,
    ]
    return write_zip(path, entries)


def _paragraphs(head: bytes, total: int, paragraph: bytes = _TINY_PARAGRAPH) -> tuple[bytes, int]:
    """A block of whole paragraphs of about 1 MiB and how many blocks make ``total`` bytes."""
    block = paragraph * (MIB // len(paragraph))
    return block, max(1, (total - len(head)) // len(block))


# --- DOCX ----------------------------------------------------------------------------------------


def docx_paragraph_bomb(path: Path, inflated: int = 1_100_000_000) -> Path:
    """A 3.4 MB DOCX whose word/document.xml inflates to 1.1 GB of tiny paragraphs (seen: a
    worker past 10 GB in 30 s)."""
    block, times = _paragraphs(_DOC_HEAD, inflated)
    xml = repeated_deflate(_DOC_HEAD, block, times, _DOC_TAIL)
    return _word_package(path, ZipEntry("word/document.xml", xml))


def docx_paragraph_bomb_small(path: Path) -> Path:
    """The 343 KB version: 110 MB of tiny paragraphs (seen: 1.8 GB in the DOCX reader)."""
    return docx_paragraph_bomb(path, inflated=110_000_000)


def docx_large_part(path: Path, inflated: int = 80 * MIB) -> Path:
    """A document.xml too big to hold, but compressed no better than real text (about 40:1),
    so only its uncompressed size gives it away."""
    paragraph = b"".join(
        b"<w:p><w:r><w:t>"
        + f"Paragraph {n:05d} of the appendix, line {n * 7919 % 10007}.".encode()
        + b"</w:t></w:r></w:p>"
        for n in range(2000)
    )
    block = (paragraph * (MIB // len(paragraph) + 1))[:MIB]
    block = block[: block.rfind(b"</w:p>") + len(b"</w:p>")]
    times = max(1, (inflated - len(_DOC_HEAD)) // len(block))
    # Level 1: each block then costs about what real text costs; the periodic repetition of
    # the 2,000 paragraphs is not what makes this file small.
    compressed = _flushed(block, level=1)
    crc = crc32_combine(
        zlib.crc32(_DOC_HEAD),
        _repeat_checksum(zlib.crc32(block), len(block), times, crc32_combine),
        len(block) * times,
    )
    crc = crc32_combine(crc, zlib.crc32(_DOC_TAIL), len(_DOC_TAIL))
    xml = Deflated(
        [(_flushed(_DOC_HEAD), 1), (compressed, times), (_flushed(_DOC_TAIL, final=True), 1)],
        len(_DOC_HEAD) + len(block) * times + len(_DOC_TAIL),
        crc,
        0,
    )
    return _word_package(path, ZipEntry("word/document.xml", xml))


def docx_lying_directory(path: Path) -> Path:
    """The paragraph bomb, but the ZIP headers claim document.xml is 4 KB inflated: only a
    reader that counts what it inflates notices."""
    block, times = _paragraphs(_DOC_HEAD, 1_100_000_000)
    xml = repeated_deflate(_DOC_HEAD, block, times, _DOC_TAIL)
    return _word_package(path, ZipEntry("word/document.xml", xml, declared_size=4096))


def docx_nested_zip(path: Path) -> Path:
    """A readable Word document carrying an embedded ZIP whose one member inflates to 2 GiB
    of zeros: the inner archive is itself compressible, so the outer part's ratio is absurd."""
    inner_path = Path(path).with_suffix(".inner.zip")
    zeros = repeated_deflate(b"", bytes(MIB), 2048, b"")
    write_zip(inner_path, [ZipEntry("zeros.bin", zeros)])
    try:
        inner = plain_deflate(inner_path.read_bytes())
    finally:
        inner_path.unlink()
    body = b"<w:p><w:r><w:t>This document carries an archive.</w:t></w:r></w:p>"
    document = plain_deflate(_DOC_HEAD + body + _DOC_TAIL)
    return _word_package(
        path,
        ZipEntry("word/document.xml", document),
        ZipEntry("word/embeddings/archive.zip", inner),
    )


def docx_entity_expansion(path: Path) -> Path:
    """The "billion laughs": ten levels of entities, each ten of the one below, in
    document.xml; expanded, one reference is 10^10 characters."""
    entities = ['<!ENTITY lol0 "lol">']
    for level in range(1, 11):
        entities.append(f'<!ENTITY lol{level} "' + f"&lol{level - 1};" * 10 + '">')
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<!DOCTYPE w:document [{''.join(entities)}]>"
        f'<w:document xmlns:w="{W}"><w:body><w:p><w:r><w:t>&lol10;</w:t></w:r></w:p>'
        "</w:body></w:document>"
    ).encode()
    return _word_package(path, ZipEntry("word/document.xml", plain_deflate(xml)))


# --- text ----------------------------------------------------------------------------------------


def text_single_line(path: Path, size: int = 30 * MIB) -> Path:
    """One line of 30 MB: no newline, no space, no sentence end."""
    pattern = b"abcdefghij" * (MIB // 10)
    with open(path, "wb") as out:
        remaining = size
        while remaining:
            piece = pattern[: min(len(pattern), remaining)]
            out.write(piece)
            remaining -= len(piece)
    return Path(path)


# --- PDF -----------------------------------------------------------------------------------------


def write_pdf(path: Path, objects: list[bytes | tuple[bytes, Iterable[bytes]]]) -> Path:
    """Objects 1..n (1 is the catalog); a tuple is (dictionary, stream chunks)."""
    offsets = []
    with open(path, "wb") as out:
        out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        for number, body in enumerate(objects, start=1):
            offsets.append(out.tell())
            out.write(f"{number} 0 obj\n".encode())
            if isinstance(body, tuple):
                dictionary, chunks = body
                out.write(dictionary + b"\nstream\n")
                for chunk in chunks:
                    out.write(chunk)
                out.write(b"\nendstream")
            else:
                out.write(body)
            out.write(b"\nendobj\n")
        xref = out.tell()
        out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
        for offset in offsets:
            out.write(f"{offset:010d} 00000 n \n".encode())
        trailer = f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\n"
        out.write(f"{trailer}startxref\n{xref}\n%%EOF\n".encode())
    return Path(path)


def pdf_flate_bomb(path: Path, inflated: int = GIB) -> Path:
    """A one-page PDF whose content stream inflates to 1 GiB (seen: 2.1 GB in a worker). The
    page says a few words first, then repeats an empty save/restore of the graphics state."""
    head = b"BT /F1 24 Tf 72 720 Td (A page with a very long content stream.) Tj ET\n"
    block = b"q Q\n" * (MIB // 4)
    xml = repeated_deflate(head, block, max(1, (inflated - len(head)) // len(block)), b"")
    length = xml.compressed_size + 6
    return write_pdf(
        path,
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
            (f"<< /Length {length} /Filter /FlateDecode >>".encode(), zlib_stream(xml)),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ],
    )


def pdf_near_blank_pages(path: Path, pages: int = 1999) -> Path:
    """1,999 pages, each with one dot and no text: every page goes to OCR (seen: 7 minutes)."""
    kids = " ".join(f"{4 + n} 0 R" for n in range(pages))
    objects: list = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        (b"<< /Length 16 >>", [b"300 400 1 1 re f"]),
    ]
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>"
    objects += [page] * pages
    return write_pdf(path, objects)


def pdf_many_pages(path: Path, pages: int = 50_000) -> Path:
    """50,000 text pages sharing one content stream: a small file over the page limit."""
    kids = " ".join(f"{5 + n} 0 R" for n in range(pages))
    content = b"BT /F1 12 Tf 72 720 Td (The same page again.) Tj ET"
    objects: list = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        (f"<< /Length {len(content)} >>".encode(), [content]),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 3 0 R >>"
    )
    objects += [page] * pages
    return write_pdf(path, objects)


def pdf_page_tree_loop(path: Path) -> Path:
    """A page tree whose intermediate node lists the root as its own child."""
    return write_pdf(
        path,
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 2 >>",
            b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R 4 0 R] /Count 2 >>",
            b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 612 792] >>",
        ],
    )


def pdf_form_loop(path: Path) -> Path:
    """A page that draws a form XObject that draws itself, forever."""
    content = b"BT /F1 24 Tf 72 720 Td (A form that draws itself.) Tj ET /X0 Do"
    form = b"/X0 Do"
    return write_pdf(
        path,
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 6 0 R >> /XObject << /X0 5 0 R >> >> /Contents 4 0 R >>",
            (f"<< /Length {len(content)} >>".encode(), [content]),
            (
                f"<< /Type /XObject /Subtype /Form /BBox [0 0 612 792] "
                f"/Resources << /XObject << /X0 5 0 R >> >> /Length {len(form)} >>".encode(),
                [form],
            ),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ],
    )


# --- images --------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_pixel_bomb(path: Path, side: int = 13_000) -> Path:
    """A 685 KB PNG of 13,000 x 13,000 transparent RGBA pixels (seen: 3.6 GB, then empty)."""
    row = bytes(1 + side * 4)  # filter byte "None", then the pixels
    rows_per_block = max(1, MIB // len(row))
    times, rest = divmod(side, rows_per_block)
    pixels = repeated_deflate(b"", row * rows_per_block, times, row * rest)
    with open(path, "wb") as out:
        out.write(b"\x89PNG\r\n\x1a\n")
        out.write(_png_chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)))
        buffer = bytearray()
        for chunk in zlib_stream(pixels):
            buffer += chunk
            if len(buffer) >= MIB:
                out.write(_png_chunk(b"IDAT", bytes(buffer)))
                buffer.clear()
        out.write(_png_chunk(b"IDAT", bytes(buffer)))
        out.write(_png_chunk(b"IEND", b""))
    return Path(path)


def png_one_pixel_high(path: Path, width: int = 100_000) -> Path:
    """A 1-pixel-high, 100,000-pixel-wide PNG: few pixels, but wider than Tesseract accepts."""
    Image.new("L", (width, 1), 255).save(path, format="PNG")
    return Path(path)


@dataclass
class TiffFrame:
    width: int
    height: int
    data: bytes  # the one strip
    compression: int = 1  # 1: none, 4: CCITT Group 4


def write_tiff(path: Path, frames: list[TiffFrame]) -> Path:
    """A little-endian bilevel TIFF, one strip per frame, written by hand so that frames can
    share their strip (thousands of frames cost one) and a frame can be huge but blank."""
    strips: dict[bytes, int] = {}
    body = bytearray()
    for frame in frames:
        if frame.data not in strips:
            strips[frame.data] = 8 + len(body)
            body += frame.data + b"\x00" * (len(frame.data) % 2)
    out = bytearray(b"II*\x00" + struct.pack("<I", 8 + len(body)) + body)
    for n, frame in enumerate(frames):
        entries = [  # (tag, type, value): SHORT is 3, LONG is 4; tags in ascending order
            (256, 4, frame.width),  # ImageWidth
            (257, 4, frame.height),  # ImageLength
            (258, 3, 1),  # BitsPerSample
            (259, 3, frame.compression),
            (262, 3, 0),  # PhotometricInterpretation: WhiteIsZero, so zeros are white
            (273, 4, strips[frame.data]),  # StripOffsets
            (278, 4, frame.height),  # RowsPerStrip
            (279, 4, len(frame.data)),  # StripByteCounts
        ]
        following = len(out) + 2 + 12 * len(entries) + 4 if n + 1 < len(frames) else 0
        out += struct.pack("<H", len(entries))
        for tag, kind, value in entries:
            packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            out += struct.pack("<HHI", tag, kind, 1) + packed
        out += struct.pack("<I", following)
    Path(path).write_bytes(bytes(out))
    return Path(path)


def _blank_group4(height: int) -> bytes:
    """CCITT Group 4 data of a blank page: each row is coded "same as the row above" (the
    one-bit vertical-0 code), then the end-of-block code, twice EOL."""
    bits = "1" * height + "000000000001" * 2
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def tiff_many_frames(path: Path, frames: int = 1500) -> Path:
    """A TIFF of 1,500 small blank frames, each one a page for OCR."""
    blank = TiffFrame(64, 64, bytes(64 * 64 // 8))
    return write_tiff(path, [blank] * frames)


def tiff_bomb_second_frame(path: Path, side: int = 13_000) -> Path:
    """A TIFF whose first frame is a small page and whose second is 13,000 x 13,000 pixels
    (blank, Group 4: 1.6 KB of data): a check of the first frame alone lets it through."""
    first = TiffFrame(850, 1100, bytes((850 + 7) // 8 * 1100))
    second = TiffFrame(side, side, _blank_group4(side), compression=4)
    return write_tiff(path, [first, second])


# --- the whole corpus ----------------------------------------------------------------------------

# name -> (function, file name)
FILES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "docx_paragraph_bomb": (docx_paragraph_bomb, "paragraph-bomb.docx"),
    "docx_paragraph_bomb_small": (docx_paragraph_bomb_small, "paragraph-bomb-small.docx"),
    "docx_large_part": (docx_large_part, "large-part.docx"),
    "docx_lying_directory": (docx_lying_directory, "lying-directory.docx"),
    "docx_nested_zip": (docx_nested_zip, "nested-zip.docx"),
    "docx_entity_expansion": (docx_entity_expansion, "entity-expansion.docx"),
    "text_single_line": (text_single_line, "single-line.txt"),
    "pdf_flate_bomb": (pdf_flate_bomb, "flate-bomb.pdf"),
    "pdf_near_blank_pages": (pdf_near_blank_pages, "near-blank-1999-pages.pdf"),
    "pdf_many_pages": (pdf_many_pages, "many-pages.pdf"),
    "pdf_page_tree_loop": (pdf_page_tree_loop, "page-tree-loop.pdf"),
    "pdf_form_loop": (pdf_form_loop, "form-loop.pdf"),
    "png_pixel_bomb": (png_pixel_bomb, "pixel-bomb.png"),
    "png_one_pixel_high": (png_one_pixel_high, "one-pixel-high.png"),
    "tiff_many_frames": (tiff_many_frames, "many-frames.tif"),
    "tiff_bomb_second_frame": (tiff_bomb_second_frame, "bomb-second-frame.tif"),
}


def make(name: str, folder: Path) -> Path:
    function, filename = FILES[name]
    return function(Path(folder) / filename)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("names", nargs="*", help=f"any of {', '.join(FILES)} (default: all)")
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(FILES)
    if unknown:
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    args.folder.mkdir(parents=True, exist_ok=True)
    for name in args.names or FILES:
        started = time.perf_counter()
        path = make(name, args.folder)
        seconds = time.perf_counter() - started
        print(f"{path.name:32} {path.stat().st_size:>12,} bytes {seconds:6.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
