"""The pipeline's pluggable parts, built from Django settings.

``documents/pipeline/`` never reads settings: everything it needs comes in through
constructors and option objects. This module is where settings become those objects. Each
client is built once per process (a worker child, after fork) and reused.
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from documents.pipeline.types import Embedder, ExtractOptions, VectorStore


@cache
def get_embedder() -> Embedder:
    """The embedder named by settings."""
    if settings.EMBEDDER == "gemini":
        from documents.pipeline.embedders.gemini import GeminiEmbedder
        from documents.pipeline.ratelimit import QuotaLimiter, RateLimitedEmbedder

        gemini = GeminiEmbedder(
            api_key=settings.GEMINI_API_KEY,
            base_url=settings.GEMINI_BASE_URL or None,
            model=settings.GEMINI_MODEL,
            dimension=settings.GEMINI_DIMENSION,
            timeout_seconds=settings.GEMINI_TIMEOUT_SECONDS,
            chunk_tokens=settings.CHUNK_TOKENS["gemini"],
            chunk_overlap=settings.CHUNK_OVERLAP["gemini"],
        )
        limiter = QuotaLimiter(
            storage_uri=settings.RATE_LIMIT_STORAGE_URI,
            name=f"gemini:{settings.GEMINI_MODEL}",
            requests_per_minute=settings.GEMINI_REQUESTS_PER_MINUTE,
            tokens_per_minute=settings.GEMINI_TOKENS_PER_MINUTE,
        )
        return RateLimitedEmbedder(gemini, limiter)
    from documents.pipeline.embedders.local import LocalEmbedder

    return LocalEmbedder(
        batch_size=settings.LOCAL_EMBEDDING_BATCH_SIZE,
        chunk_tokens=settings.CHUNK_TOKENS["local"],
        chunk_overlap=settings.CHUNK_OVERLAP["local"],
        backend=settings.LOCAL_EMBEDDING_BACKEND,
        cache_dir=settings.LOCAL_EMBEDDING_CACHE_DIR,
    )


@cache
def get_vector_store() -> VectorStore:
    """The vector store named by settings."""
    if settings.VECTOR_STORE == "pinecone":
        from documents.pipeline.stores.pinecone_store import PineconeStore

        return PineconeStore(
            host=settings.PINECONE_INDEX_HOST,
            api_key=settings.PINECONE_API_KEY,
            timeout_seconds=settings.PINECONE_TIMEOUT_SECONDS,
        )
    from documents.pipeline.stores.lancedb_store import LanceDBStore

    return LanceDBStore(uri=settings.LANCEDB_URI, dimension=get_embedder().dimension)


def extract_options() -> ExtractOptions:
    return ExtractOptions(
        max_pages=settings.PIPELINE_MAX_PAGES,
        ocr_languages=settings.OCR_LANGUAGES,
        ocr_dpi=settings.OCR_DPI,
        ocr_parallel_pages=settings.OCR_PARALLEL_PAGES,
        tesseract_cmd=settings.TESSERACT_CMD,
    )
