"""Small real documents made on the spot, so the extraction tests need no corpus.

PDFs with a text layer are written by hand (a few objects, the standard Helvetica font), and
encrypted with the PDF standard security handler (RC4, revision 2) implemented here, so no
PDF-writing library is needed. Image-only PDFs, PNGs and TIFFs are drawn with Pillow in big
clear type that Tesseract reads reliably; DOCX files are written with python-docx, with the
parts it cannot write (footnotes, text boxes) added as XML.
"""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zipfile
from pathlib import Path

import docx
import pypdfium2 as pdfium
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.opc.packuri import PackURI
from docx.opc.part import Part
from docx.oxml import parse_xml
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

# --- PDF with a text layer ---------------------------------------------------------------------

# PDF 1.7, 7.6.3.3: the bytes a password is padded with
_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")
_FILE_ID = hashlib.md5(b"makedocs").digest()


def text_pdf(
    path: Path, pages: list[str | None], *, user_password: str | None = None, owner: str = "owner"
) -> Path:
    """Write a PDF with one page per string (lines split on newlines), in Helvetica; a page
    given as None has no content at all (blank paper, not even an empty text object).
    ``user_password`` encrypts it (RC4-40); "" makes a PDF that opens without a password
    but is still encrypted, like the ones that only restrict printing."""
    key = None
    encrypt_dict = ""
    if user_password is not None:
        key, o_entry, u_entry, permissions = _rc4_keys(user_password, owner)
        encrypt_dict = (
            f"<< /Filter /Standard /V 1 /R 2 /Length 40 /P {permissions} "
            f"/O <{o_entry.hex()}> /U <{u_entry.hex()}> >>"
        )
    count = len(pages)
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(count))}] "
        f"/Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, text in enumerate(pages):
        page_num, content_num = 4 + 2 * i, 5 + 2 * i
        contents = f" /Contents {content_num} 0 R" if text is not None else ""
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >>{contents} >>".encode()
        )
        stream = _content_stream(text or "")
        if key is not None:
            stream = _rc4(_object_key(key, content_num), stream)
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
        assert page_num == len(objects) - 1
    if encrypt_dict:
        objects.append(encrypt_dict.encode())
    return _write_pdf(path, objects, encrypted=bool(encrypt_dict))


# What a broken ToUnicode map makes of the text, per character code (printable ASCII):
# letters shifted by one ("Uif" for "The"), every code into the private-use area, every
# code to U+FFFD, or each code to a glyph name ("/g84"), as some converters write.
_BROKEN_MAPS = {
    "shifted": lambda b: chr(b + 1) if chr(b).isalpha() and chr(b) not in "zZ" else chr(b),
    "private-use": lambda b: chr(0xE000 + b),
    "replacement": lambda b: " " if b == 0x20 else "\ufffd",
    "glyph-names": lambda b: " " if b == 0x20 else f"/g{b}",
}


def broken_tounicode_pdf(path: Path, pages: list[str], broken: str) -> Path:
    """A text PDF that looks right but whose Helvetica font carries a ToUnicode CMap that
    maps the codes to the wrong characters (``broken``: a key of _BROKEN_MAPS): the glyphs
    drawn are the text, the text a reader extracts is not."""
    wrong = _BROKEN_MAPS[broken]
    entries = []
    for code in range(0x20, 0x7F):
        target = wrong(code).encode("utf-16-be").hex().upper()
        entries.append(f"<{code:02X}> <{target}>")
    cmap = (
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Broken def /CMapType 2 def\n"
        "1 begincodespacerange <00> <FF> endcodespacerange\n"
        f"{len(entries)} beginbfchar\n" + "\n".join(entries) + "\nendbfchar\n"
        "endcmap CMapName currentdict /CMap defineresource pop end end"
    ).encode()
    count = len(pages)
    first_page = 5
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{first_page + 2 * i} 0 R' for i in range(count))}] "
        f"/Count {count} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding "
        b"/ToUnicode 4 0 R >>",
        f"<< /Length {len(cmap)} >>\nstream\n".encode() + cmap + b"\nendstream",
    ]
    for i, text in enumerate(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> "
            + f"/Contents {first_page + 2 * i + 1} 0 R >>".encode()
        )
        stream = _content_stream(text)
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    return _write_pdf(path, objects, encrypted=False)


def ruled_table_pdf(
    path: Path, pages: list[tuple[str, list[list[str]], str]], *, ruled: bool = True
) -> Path:
    """A text PDF with a ruled table on each page: (text above, rows of cells, text below).
    Cells are 150 pt wide and 24 pt high, in Helvetica 11, with a 0.8 pt rule around every
    cell, drawn as separate lines as word processors do; ``ruled=False`` leaves the rules out,
    so only the alignment of the text says there is a table."""
    objects: list[bytes] = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(len(pages)))}] "
        f"/Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, (above, rows, below) in enumerate(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> " + f"/Contents {5 + 2 * i} 0 R >>".encode()
        )
        stream = _table_stream(above, rows, below, ruled=ruled)
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    return _write_pdf(path, objects, encrypted=False)


def _table_stream(above: str, rows: list[list[str]], below: str, *, ruled: bool) -> bytes:
    left, width, height = 72, 150, 24
    top = 740 - 18 * (above.count("\n") + 1) if above else 760
    ops = []
    if above:
        ops.append(_text_lines(above, 72, 740))
    columns = max(len(row) for row in rows)
    right, bottom = left + columns * width, top - len(rows) * height
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            escaped = cell.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            x, y = left + c * width + 6, top - (r + 1) * height + 8
            ops.append(f"BT /F1 11 Tf 1 0 0 1 {x} {y} Tm ({escaped}) Tj ET")
    for r in range(len(rows) + 1 if ruled else 0):
        y = top - r * height
        ops.append(f"0.8 w {left} {y} m {right} {y} l S")
    for c in range(columns + 1 if ruled else 0):
        x = left + c * width
        ops.append(f"0.8 w {x} {top} m {x} {bottom} l S")
    if below:
        ops.append(_text_lines(below, 72, bottom - 30))
    return "\n".join(ops).encode("cp1252")


def _text_lines(text: str, x: int, y: int) -> str:
    lines = [f"BT /F1 12 Tf {x} {y} Td 18 TL"]
    for line in text.split("\n"):
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        lines.append(f"({escaped}) Tj T*")
    lines.append("ET")
    return "\n".join(lines)


def _content_stream(text: str) -> bytes:
    lines = ["BT /F1 14 Tf 72 720 Td 18 TL"]
    for line in text.split("\n"):
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        lines.append(f"({escaped}) Tj T*")
    lines.append("ET")
    return "\n".join(lines).encode("cp1252")


def _write_pdf(path: Path, objects: list[bytes], *, encrypted: bool) -> Path:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    trailer = f"/Size {len(objects) + 1} /Root 1 0 R /ID [<{_FILE_ID.hex()}> <{_FILE_ID.hex()}>]"
    if encrypted:
        trailer += f" /Encrypt {len(objects)} 0 R"
    out += f"trailer\n<< {trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    Path(path).write_bytes(bytes(out))
    return Path(path)


def _rc4_keys(user: str, owner: str) -> tuple[bytes, bytes, bytes, int]:
    permissions = -4  # every permission granted; bits 1-2 must be 0
    padded_user = (user.encode("latin-1") + _PAD)[:32]
    owner_key = hashlib.md5((owner.encode("latin-1") + _PAD)[:32]).digest()[:5]
    o_entry = _rc4(owner_key, padded_user)
    digest = hashlib.md5(padded_user + o_entry + struct.pack("<i", permissions) + _FILE_ID)
    key = digest.digest()[:5]
    return key, o_entry, _rc4(key, _PAD), permissions


def _object_key(key: bytes, number: int, generation: int = 0) -> bytes:
    salt = number.to_bytes(3, "little") + generation.to_bytes(2, "little")
    return hashlib.md5(key + salt).digest()[: len(key) + 5]


def _rc4(key: bytes, data: bytes) -> bytes:
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def truncated(source: Path, path: Path, fraction: float = 0.5) -> Path:
    data = Path(source).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * fraction)])
    return Path(path)


# --- images ------------------------------------------------------------------------------------


def text_image(text: str, *, size: tuple[int, int] = (1700, 1100), mode: str = "L") -> Image.Image:
    """Black text, 64 px high (about 23 pt at 200 DPI), on white, or on a transparent
    background for mode "RGBA"."""
    background = (0, 0, 0, 0) if mode == "RGBA" else "white"
    image = Image.new(mode, size, background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=64)
    draw.multiline_text((100, 100), text, fill="black", font=font, spacing=40)
    return image


def degraded(
    image: Image.Image,
    *,
    blur: float = 0.0,
    noise: float = 0.0,
    contrast: float = 1.0,
    seed: int = 0,
) -> Image.Image:
    """A worse scan of ``image`` (mode "L"): Gaussian blur of radius ``blur`` pixels,
    ``contrast`` < 1 pulling black and white towards mid-grey, and salt-and-pepper noise on
    a ``noise`` share of the pixels (a fixed seed, so a test sees the same image each run)."""
    out = image.convert("L")
    if blur:
        out = out.filter(ImageFilter.GaussianBlur(blur))
    if contrast != 1.0:
        out = ImageEnhance.Contrast(out).enhance(contrast)
    if noise:
        rng = random.Random(seed)
        pixels = out.load()
        width, height = out.size
        for _ in range(int(noise * width * height)):
            pixels[rng.randrange(width), rng.randrange(height)] = rng.choice((0, 255))
    return out


def image_pdf(path: Path, pages: list[str]) -> Path:
    """A scan-like PDF: each page is a picture of the text, with no text layer."""
    images = [text_image(text, size=(1700, 2200)) for text in pages]
    images[0].save(path, format="PDF", resolution=200, save_all=True, append_images=images[1:])
    return Path(path)


def scan_pdf(path: Path, images: list[Image.Image], *, dpi: int = 200) -> Path:
    """A PDF of the given pictures (a scan: no text layer), one page each at ``dpi``."""
    images = [image.convert("L") for image in images]
    images[0].save(path, format="PDF", resolution=dpi, save_all=True, append_images=images[1:])
    return Path(path)


def joined_pdf(path: Path, parts: list[Path]) -> Path:
    """The pages of ``parts``, in order, in one PDF (PDFium copies each page with its fonts
    and images, so a broken ToUnicode map or a scan stays as it was)."""
    joined = pdfium.PdfDocument.new()
    try:
        for part in parts:
            source = pdfium.PdfDocument(part)
            try:
                joined.import_pages(source)
            finally:
                source.close()
        joined.save(path)
    finally:
        joined.close()
    return Path(path)


def tiff(path: Path, pages: list[str]) -> Path:
    images = [text_image(text) for text in pages]
    images[0].save(path, format="TIFF", dpi=(200, 200), save_all=True, append_images=images[1:])
    return Path(path)


# --- DOCX --------------------------------------------------------------------------------------


def word_docx(path: Path, *, footnote: str | None = None, text_box: str | None = None) -> Path:
    """A Word document with a header and footer, a heading, paragraphs, a bulleted and a
    numbered list and a table; optionally a footnote and a text box (anchored in the second
    body paragraph, written both as DrawingML and as the VML fallback, as Word does)."""
    document = docx.Document()
    section = document.sections[0]
    section.header.paragraphs[0].text = "Quarterly header"
    section.footer.paragraphs[0].text = "Confidential footer"
    document.add_heading("Annual report", level=1)
    document.add_paragraph("First body paragraph.")
    anchor = document.add_paragraph("Second body paragraph.")
    document.add_paragraph("apples", style="List Bullet")
    document.add_paragraph("pears", style="List Bullet")
    document.add_paragraph("first step", style="List Number")
    document.add_paragraph("second step", style="List Number")
    table = document.add_table(rows=2, cols=2)
    for r, row in enumerate([("Region", "Revenue"), ("North", "1200")]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    document.add_paragraph("Closing paragraph.")
    if footnote:
        _add_footnote(document, anchor, footnote)
    if text_box:
        anchor._p.append(parse_xml(_TEXT_BOX.format(text=text_box)))
    document.save(path)
    return Path(path)


def docx_with_two_sections(path: Path, header: str) -> Path:
    """Two sections, each with its own header part holding the same text."""
    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = header
    document.add_paragraph("Section one text.")
    second = document.add_section()
    second.header.is_linked_to_previous = False
    second.header.paragraphs[0].text = header
    document.add_paragraph("Section two text.")
    document.save(path)
    return Path(path)


def empty_docx(path: Path) -> Path:
    docx.Document().save(path)
    return Path(path)


def strict_docx(source: Path, path: Path) -> Path:
    """Rewrite a transitional DOCX in the strict OOXML namespaces (ISO 29500 strict)."""
    replacements = [
        (W.encode(), b"http://purl.oclc.org/ooxml/wordprocessingml/main"),
        (
            b"http://schemas.openxmlformats.org/officeDocument/2006/relationships",
            b"http://purl.oclc.org/ooxml/officeDocument/relationships",
        ),
    ]
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith((".xml", ".rels")):
                for old, new in replacements:
                    data = data.replace(old, new)
            dst.writestr(item, data)
    return Path(path)


def _add_footnote(document, paragraph, text: str) -> None:
    xml = (
        f'<w:footnotes xmlns:w="{W}">'
        '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p>'
        "</w:footnote>"
        f'<w:footnote w:id="1"><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:footnote>'
        "</w:footnotes>"
    )
    part = Part(
        PackURI("/word/footnotes.xml"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml",
        xml.encode(),
        document.part.package,
    )
    document.part.relate_to(part, RT.FOOTNOTES)
    paragraph._p.append(parse_xml(f'<w:r xmlns:w="{W}"><w:footnoteReference w:id="1"/></w:r>'))


_TEXT_BOX = (
    f'<w:r xmlns:w="{W}" '
    'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
    'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
    'xmlns:v="urn:schemas-microsoft-com:vml">'
    "<mc:AlternateContent>"
    '<mc:Choice Requires="wps"><w:drawing><wps:wsp><wps:txbx><w:txbxContent>'
    "<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"
    "</w:txbxContent></wps:txbx></wps:wsp></w:drawing></mc:Choice>"
    "<mc:Fallback><w:pict><v:shape><v:textbox><w:txbxContent>"
    "<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"
    "</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback>"
    "</mc:AlternateContent></w:r>"
)


def renamed_main_part(source: Path, path: Path, name: str = "word/body-text.xml") -> Path:
    """The same Word document with its main part under another name: the package's
    relationships and content types point at the new name, as any OPC producer may write
    it (Word and python-docx find the main part through the relationships)."""
    old = "word/document.xml"
    folder, base = name.rsplit("/", 1)
    renames = {old: name, "word/_rels/document.xml.rels": f"{folder}/_rels/{base}.rels"}
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename in ("_rels/.rels", "[Content_Types].xml"):
                data = data.replace(f"/{old}".encode(), f"/{name}".encode())
                data = data.replace(f'"{old}"'.encode(), f'"{name}"'.encode())
            dst.writestr(renames.get(item.filename, item.filename), data)
    return Path(path)


def spreadsheet_package() -> bytes:
    """The bytes of a minimal OOXML spreadsheet: a package whose main part is a workbook."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="r" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        )
        archive.writestr(
            "[Content_Types].xml",
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/></Types>',
        )
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()
