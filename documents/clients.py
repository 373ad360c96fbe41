"""The pipeline's pluggable parts, built from Django settings.

``documents/pipeline/`` never reads settings: everything it needs comes in through
constructors and option objects. This module is where settings become those objects.

A client is built once per configuration and reused (a loaded model, an open index): the
cache is keyed by the settings the client is built from, so a process (a worker child, after
fork) builds it once, and a test that overrides a setting gets a client built from it. The
clients' modules are imported only when chosen: the one not configured would load torch or an
SDK for nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.conf import settings

from documents.pipeline.types import Embedder, ExtractOptions, VectorStore


@dataclass(frozen=True)
class EmbedderSettings:
    kind: str
    batch_size: int
    chunk_tokens: int
    chunk_overlap: int
    gemini_api_key: str = ""
    gemini_base_url: str = ""
    gemini_model: str = ""
    gemini_dimension: int = 0
    gemini_timeout_seconds: int = 0
    rate_limit_storage_uri: str = ""
    requests_per_minute: int = 0
    tokens_per_minute: int = 0
    local_backend: str = "torch"
    local_cache_dir: str = ""
    local_threads: int = 0
    quota_headroom: float = 0.0

    @classmethod
    def current(cls) -> EmbedderSettings:
        kind = settings.EMBEDDER
        common = {
            "kind": kind,
            "chunk_tokens": settings.CHUNK_TOKENS[kind],
            "chunk_overlap": settings.CHUNK_OVERLAP[kind],
        }
        if kind != "gemini":
            return cls(
                batch_size=settings.LOCAL_EMBEDDING_BATCH_SIZE,
                local_backend=settings.LOCAL_EMBEDDING_BACKEND,
                local_cache_dir=str(settings.LOCAL_EMBEDDING_CACHE_DIR),
                local_threads=settings.LOCAL_EMBEDDING_THREADS,
                **common,
            )
        return cls(
            batch_size=0,
            gemini_api_key=settings.GEMINI_API_KEY,
            gemini_base_url=settings.GEMINI_BASE_URL,
            gemini_model=settings.GEMINI_MODEL,
            gemini_dimension=settings.GEMINI_DIMENSION,
            gemini_timeout_seconds=settings.GEMINI_TIMEOUT_SECONDS,
            rate_limit_storage_uri=settings.RATE_LIMIT_STORAGE_URI,
            requests_per_minute=settings.GEMINI_REQUESTS_PER_MINUTE,
            tokens_per_minute=settings.GEMINI_TOKENS_PER_MINUTE,
            quota_headroom=settings.GEMINI_QUOTA_HEADROOM,
            **common,
        )


@dataclass(frozen=True)
class VectorStoreSettings:
    kind: str
    lancedb_uri: str = ""
    pinecone_host: str = ""
    pinecone_api_key: str = ""
    pinecone_timeout_seconds: int = 0

    @classmethod
    def current(cls) -> VectorStoreSettings:
        if settings.VECTOR_STORE == "pinecone":
            return cls(
                kind="pinecone",
                pinecone_host=settings.PINECONE_INDEX_HOST,
                pinecone_api_key=settings.PINECONE_API_KEY,
                pinecone_timeout_seconds=settings.PINECONE_TIMEOUT_SECONDS,
            )
        return cls(kind="lancedb", lancedb_uri=str(settings.LANCEDB_URI))


def get_embedder() -> Embedder:
    """The embedder the settings name."""
    return _embedder(EmbedderSettings.current())


def get_vector_store() -> VectorStore:
    """The vector store the settings name."""
    return _vector_store(VectorStoreSettings.current(), EmbedderSettings.current())


def extract_options() -> ExtractOptions:
    """How documents are read, and the budgets they are read within (README, "Budgets")."""
    return ExtractOptions(
        max_pages=settings.PIPELINE_MAX_PAGES,
        ocr_languages=settings.OCR_LANGUAGES,
        ocr_dpi=settings.OCR_DPI,
        ocr_parallel_pages=settings.OCR_PARALLEL_PAGES,
        tesseract_cmd=settings.TESSERACT_CMD,
        max_zip_part_bytes=settings.PIPELINE_MAX_ZIP_PART_BYTES,
        max_zip_ratio=settings.PIPELINE_MAX_ZIP_RATIO,
        max_pdf_stream_bytes=settings.PIPELINE_MAX_PDF_STREAM_BYTES,
        max_image_pixels=settings.PIPELINE_MAX_IMAGE_PIXELS,
        max_ocr_pages=settings.PIPELINE_MAX_OCR_PAGES,
        max_chars=settings.PIPELINE_MAX_CHARS,
        # Extraction's own deadline is the document's: it fires first when extraction is
        # what takes the time, and says at which page; the task's soft time limit covers the
        # stages after it.
        max_seconds=settings.PIPELINE_MAX_DOCUMENT_SECONDS,
    )


@cache
def _embedder(config: EmbedderSettings) -> Embedder:
    if config.kind == "gemini":
        from documents.pipeline.embedders.gemini import GeminiEmbedder
        from documents.pipeline.ratelimit import QuotaLimiter, RateLimitedEmbedder

        gemini = GeminiEmbedder(
            api_key=config.gemini_api_key,
            base_url=config.gemini_base_url or None,
            model=config.gemini_model,
            dimension=config.gemini_dimension,
            timeout_seconds=config.gemini_timeout_seconds,
            chunk_tokens=config.chunk_tokens,
            chunk_overlap=config.chunk_overlap,
        )
        limiter = QuotaLimiter(
            storage_uri=config.rate_limit_storage_uri,
            name=f"gemini:{config.gemini_model}",
            requests_per_minute=config.requests_per_minute,
            tokens_per_minute=config.tokens_per_minute,
            headroom=config.quota_headroom,
        )
        return RateLimitedEmbedder(gemini, limiter)
    from documents.pipeline.embedders.local import LocalEmbedder

    return LocalEmbedder(
        batch_size=config.batch_size,
        chunk_tokens=config.chunk_tokens,
        chunk_overlap=config.chunk_overlap,
        backend=config.local_backend,
        cache_dir=config.local_cache_dir,
        num_threads=config.local_threads or None,
    )


@cache
def _vector_store(config: VectorStoreSettings, embedder: EmbedderSettings) -> VectorStore:
    if config.kind == "pinecone":
        from documents.pipeline.stores.pinecone_store import PineconeStore

        return PineconeStore(
            host=config.pinecone_host,
            api_key=config.pinecone_api_key,
            timeout_seconds=config.pinecone_timeout_seconds,
        )
    from documents.pipeline.stores.lancedb_store import LanceDBStore

    # An empty LanceDB table takes the dimension of the embedder it is created for.
    return LanceDBStore(uri=config.lancedb_uri, dimension=_embedder(embedder).dimension)
