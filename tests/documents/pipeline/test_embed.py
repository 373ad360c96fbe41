"""The embedding stage (documents/pipeline/embed.py) with the real local model."""

from __future__ import annotations

import numpy as np
import pytest

from documents.errors import FailureKind, PermanentError
from documents.pipeline.embed import embed_chunks
from documents.pipeline.embedders.local import LocalEmbedder


@pytest.fixture(scope="module")
def embedder():
    return LocalEmbedder()


def test_embed_chunks_sends_longest_first_and_returns_rows_in_text_order(embedder):
    # by characters the word comes first; by word pieces the numbers do (13 against 6)
    texts = ["Hi.", "Extraordinarily", "1,2,3,4,5,6"]
    counts = embedder.count_tokens_batch(texts)
    sent = []

    class Recording(LocalEmbedder):  # the real model; only notes what each batch held
        def embed_documents(self, batch, *, title=""):
            sent.append(list(batch))
            return super().embed_documents(batch, title=title)

    matrix = embed_chunks(Recording(batch_size=2), texts, token_counts=counts)
    assert sent == [[texts[2], texts[1]], [texts[0]]]
    np.testing.assert_allclose(matrix, np.array(embedder.embed_documents(texts)), atol=1e-5)


def test_progress_is_reported_after_each_batch_with_the_texts_done(embedder):
    texts = [f"Sentence number {i} about the harbour." for i in range(5)]
    done = []
    matrix = embed_chunks(LocalEmbedder(batch_size=2), texts, on_batch=done.append)
    assert done == [2, 4, 5]
    assert matrix.shape == (5, 384) and matrix.dtype == np.float32


def test_no_texts_make_an_empty_matrix(embedder):
    assert embed_chunks(embedder, []).shape == (0, 384)


def test_vectors_of_another_width_than_configured_are_a_dimension_mismatch():
    class Misconfigured(LocalEmbedder):  # the real model, told the wrong width
        dimension = 768

    with pytest.raises(PermanentError) as caught:
        embed_chunks(Misconfigured(), ["The cat sat on the mat."])
    assert caught.value.kind == FailureKind.DIMENSION_MISMATCH
    assert "384" in caught.value.message and "768" in caught.value.message
