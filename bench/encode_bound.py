"""The embedding bound, timed the same way on both sides of the LlamaIndex comparison.

Imports nothing of the project (llamaindex_pipeline.py runs in its own virtualenv), only torch
and the sentence-transformers model it is given."""

from __future__ import annotations

import time


def time_encode(model, texts: list[str], batch_size: int) -> float:
    """Seconds for one ``SentenceTransformer.encode`` of ``texts``: embedding and nothing else."""
    import torch

    start = time.perf_counter()
    with torch.inference_mode():
        model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
    return time.perf_counter() - start
