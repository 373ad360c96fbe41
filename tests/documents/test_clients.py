"""documents/clients.py: settings become the pipeline's clients."""

from __future__ import annotations

from django.test import override_settings

from documents.clients import extract_options, get_embedder
from documents.pipeline.types import ExtractOptions


def test_the_local_embedder_gets_the_backend_cache_folder_and_threads_from_settings(tmp_path):
    with override_settings(
        EMBEDDER="local",
        LOCAL_EMBEDDING_BACKEND="onnx-int8",
        LOCAL_EMBEDDING_CACHE_DIR=tmp_path,
        LOCAL_EMBEDDING_THREADS=3,
    ):
        embedder = get_embedder()
    assert (embedder.backend, embedder.cache_dir, embedder.num_threads) == (
        "onnx-int8",
        tmp_path,
        3,
    )
    assert embedder.backend_in_use is None  # nothing is built before the first text


def test_every_budget_setting_reaches_the_extraction_options():
    with override_settings(
        PIPELINE_MAX_PAGES=11,
        PIPELINE_MAX_ZIP_PART_BYTES=12,
        PIPELINE_MAX_ZIP_RATIO=13.5,
        PIPELINE_MAX_PDF_STREAM_BYTES=14,
        PIPELINE_MAX_IMAGE_PIXELS=15,
        PIPELINE_MAX_OCR_PAGES=16,
        PIPELINE_MAX_CHARS=17,
        PIPELINE_MAX_DOCUMENT_SECONDS=18.0,
    ):
        options = extract_options()
    assert (
        options.max_pages,
        options.max_zip_part_bytes,
        options.max_zip_ratio,
        options.max_pdf_stream_bytes,
        options.max_image_pixels,
        options.max_ocr_pages,
        options.max_chars,
        options.max_seconds,
    ) == (11, 12, 13.5, 14, 15, 16, 17, 18.0)


def test_the_default_settings_are_the_pipelines_own_defaults():
    assert extract_options() == ExtractOptions()
