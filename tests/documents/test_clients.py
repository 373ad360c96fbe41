"""documents/clients.py: settings become the pipeline's clients."""

from __future__ import annotations

from django.test import override_settings

from documents.clients import get_embedder


def test_the_local_embedder_gets_the_backend_and_cache_folder_from_settings(tmp_path):
    with override_settings(
        EMBEDDER="local", LOCAL_EMBEDDING_BACKEND="onnx-int8", LOCAL_EMBEDDING_CACHE_DIR=tmp_path
    ):
        embedder = get_embedder()
    assert (embedder.backend, embedder.cache_dir) == ("onnx-int8", tmp_path)
    assert embedder.backend_in_use is None  # nothing is built before the first text
