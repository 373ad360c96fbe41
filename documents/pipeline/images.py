"""Image files (PNG, JPEG, TIFF) as pages for OCR, within the pixel and page budgets.

An image's size is in its header: it is checked against ``max_image_pixels`` before a pixel
is decoded, for every frame of a TIFF (each frame has its own header). Pillow's own
decompression-bomb warning is turned into an error, so nothing is decoded past its limit
either. A TIFF's frames are counted by walking their headers only up to the page budgets.
Decoded frames are shrunk by a whole factor before any conversion, so a large image is not
copied at full size several times over.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from documents.errors import FailureKind, PermanentError

from .budgets import Deadline, image_too_large, too_many_ocr_pages
from .ocr import OcrJob
from .types import ExtractOptions

# Tesseract's time and memory grow with the pixel count, and it refuses images wider or taller
# than 32767 px. 40 Mpx is an A3 page at 300 DPI; larger images are scaled down to it first.
MAX_OCR_PIXELS = 40_000_000
MAX_OCR_SIDE = 32_767


def open_image(path: Path, options: ExtractOptions) -> tuple[Image.Image, int]:
    """The image opened (its header read, no pixel decoded) and its page count, once its
    first frame's pixels and its frames are within the budgets."""
    try:
        with _bomb_warning_is_an_error():
            image = Image.open(path)  # reads the header only
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _pillow_bomb(exc, path, options) from None
    except (UnidentifiedImageError, OSError):
        raise _damaged_image() from None
    try:
        _check_pixels(image.size, options, "This image")
        frames = _frame_count(image, options) if image.format == "TIFF" else 1
    except BaseException:
        image.close()
        raise
    return image, frames


def _frame_count(image: Image.Image, options: ExtractOptions) -> int:
    """A TIFF's frames (only TIFF pages are document pages; the extra frames of a JPEG (MPO)
    are previews), each a page for OCR. Counting means walking the chain of frame headers,
    so it stops past the limit instead of walking thousands."""
    limit = min(options.max_pages, options.max_ocr_pages)
    try:
        # One frame at a time: Pillow miscounts the frames when asked to seek far ahead.
        for index in range(1, limit + 1):
            image.seek(index)
    except EOFError:
        image.seek(0)
        return index
    except (OSError, ValueError):
        raise _damaged_image() from None
    # The frame after the limit exists.
    if options.max_pages <= options.max_ocr_pages:
        raise PermanentError(
            f"This image has more than {options.max_pages:,} pages, the limit; split it "
            "into smaller files and upload them separately.",
            kind=FailureKind.TOO_MANY_PAGES,
        )
    raise too_many_ocr_pages(options.max_ocr_pages, what="image")


def image_frames(
    image: Image.Image, frames: int, options: ExtractOptions, deadline: Deadline
) -> Iterator[OcrJob]:
    """Each frame as an OcrJob: its header checked, then decoded (Pillow's bomb warning an
    error), made grayscale and scaled to what Tesseract is given. Closes the image."""
    try:
        for index in range(frames):
            deadline.check(page=index + 1, pages=frames)
            try:
                image.seek(index)
                where = f"Page {index + 1} of this image" if frames > 1 else "This image"
                _check_pixels(image.size, options, where)  # a frame's header, not its pixels
                with _bomb_warning_is_an_error():
                    image.load()
                frame, scale = _for_ocr(image)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise _pillow_bomb(exc, None, options) from None
            except (OSError, ValueError, EOFError):
                raise _damaged_image() from None
            dpi = image.info.get("dpi")
            dpi = round(float(dpi[0]) * scale) if dpi and float(dpi[0]) >= 70 else None
            yield OcrJob(number=index + 1, image=frame, dpi=dpi)
            del frame
    finally:
        image.close()


def _check_pixels(size: tuple[int, int], options: ExtractOptions, where: str) -> None:
    pixels = size[0] * size[1]
    if pixels > options.max_image_pixels:
        raise image_too_large(pixels, options.max_image_pixels, size=size, where=where)


class _bomb_warning_is_an_error(warnings.catch_warnings):
    """Pillow only warns about an image between its limit and twice its limit."""

    def __enter__(self):
        super().__enter__()
        warnings.simplefilter("error", Image.DecompressionBombWarning)


def _pillow_bomb(exc: Exception, path: Path | None, options: ExtractOptions) -> PermanentError:
    """Pillow refused before our own check could run (its limit, MAX_IMAGE_PIXELS, is lower
    than ``max_image_pixels``): the image is over the lower of the two."""
    limit = min(options.max_image_pixels, Image.MAX_IMAGE_PIXELS or options.max_image_pixels)
    size = None
    if path is not None:
        # The header again, only for the dimensions: Pillow's message has the pixel count.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            try:
                with Image.open(path) as image:
                    size = image.size
            except (Image.DecompressionBombError, UnidentifiedImageError, OSError):
                pass
    if size is not None:
        return image_too_large(size[0] * size[1], limit, size=size)
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return image_too_large(int(found.group(1)) if found else 0, limit)


def ocr_scale(width: float, height: float) -> float:
    """The factor that brings an image within what Tesseract is given: MAX_OCR_PIXELS, and
    MAX_OCR_SIDE on either side (a 100,000 x 1 strip has few pixels but is too wide)."""
    return min(
        1.0,
        math.sqrt(MAX_OCR_PIXELS / max(1, width * height)),
        MAX_OCR_SIDE / max(width, height, 1),
    )


def _for_ocr(image: Image.Image) -> tuple[Image.Image, float]:
    """A grayscale (or bilevel) copy of the current frame, scaled to what Tesseract is
    given, and the scale. A large image is first shrunk by a whole factor (``reduce``, a box
    filter) before any conversion, so a 150-million-pixel RGBA image is not copied at full
    size three times over."""
    scale = ocr_scale(image.width, image.height)
    target = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
    frame = image
    if frame.mode == "P" or (frame.mode in ("1", "L", "RGB") and "transparency" in frame.info):
        frame = frame.convert("RGBA")
    elif frame.mode not in ("1", "L", "LA", "RGB", "RGBA"):
        frame = frame.convert("RGB")
    shrink = math.floor(1 / scale) if scale < 1 else 1
    if shrink >= 2:
        frame = (frame.convert("L") if frame.mode == "1" else frame).reduce(shrink)
    if frame.mode in ("RGBA", "LA"):
        # Transparent pixels are black underneath: flatten onto white or text disappears.
        gray = Image.new("L", frame.size, 255)
        gray.paste(frame.convert("L"), mask=frame.getchannel("A"))
        frame = gray
    elif frame.mode == "RGB":
        frame = frame.convert("L")
    elif frame is image:
        frame = image.copy()  # "1" or "L": the frame itself belongs to the file being read
    if frame.size != target:
        frame = frame.resize(target, Image.Resampling.LANCZOS)
    return frame, scale


def _damaged_image() -> PermanentError:
    return PermanentError(
        "This image is damaged or incomplete and cannot be read; upload it again.",
        kind=FailureKind.CORRUPT,
    )
