"""Benchmark of chunking and local embedding (not a test; timings never go in tests).

    .venv/bin/python bench/bench_chunk_embed.py [--corpus ../shared/corpus] [--runs 3]

1. split_text tokens/s on the text of freeculture.pdf (extracted here with pypdfium2 directly,
   so this bench does not depend on the extract module), counted with the all-MiniLM-L6-v2
   tokenizer, 256-token chunks with 32 overlap (the LocalEmbedder defaults); tokens/s is the
   document's word pieces divided by the wall time of split_text.
2. LocalEmbedder chunks/s on the 256-token chunks from step 1, its default batch size (16),
   torch on the CPU.
Medians of ``--runs`` runs. Prints a table and writes bench/results/chunk_embed.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pypdfium2  # noqa: E402
from results_file import write_result  # noqa: E402

from documents.pipeline.chunk import _sentencizer, split_text  # noqa: E402
from documents.pipeline.embedders.local import LocalEmbedder  # noqa: E402
from documents.pipeline.types import PAGE_SEPARATOR, Page  # noqa: E402

PDF = "freeculture.pdf"


def extract_pages(path: Path) -> list[Page]:
    pdf = pypdfium2.PdfDocument(str(path))
    try:
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            pages.append(Page(number=i + 1, text=textpage.get_text_range()))
            textpage.close()
            page.close()
        return pages
    finally:
        pdf.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--embed-chunks", type=int, default=192)
    args = parser.parse_args()

    pages = extract_pages(args.corpus / PDF)
    embedder = LocalEmbedder()  # the worker's default batch size
    text = PAGE_SEPARATOR.join(p.text for p in pages)
    doc_tokens = sum(embedder.count_tokens(p.text) - 2 for p in pages)  # without [CLS]/[SEP]
    _sentencizer()  # spaCy's one-off start-up is not chunking work

    chunk_times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        chunks = split_text(
            pages,
            counter=embedder,
            max_tokens=embedder.chunk_tokens,
            overlap=embedder.chunk_overlap,
        )
        chunk_times.append(time.perf_counter() - start)
    chunk_s = statistics.median(chunk_times)
    counts = [c.token_count for c in chunks]

    batch = [c.text for c in chunks if c.token_count >= 240][: args.embed_chunks]
    embedder.embed_documents(batch[:32])  # load the model and warm torch up
    embed_times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        embedder.embed_documents(batch)
        embed_times.append(time.perf_counter() - start)
    embed_s = statistics.median(embed_times)

    result = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "document": {
            "file": PDF,
            "pages": len(pages),
            "characters": len(text),
            "minilm_tokens": doc_tokens,
        },
        "chunking": {
            "max_tokens": embedder.chunk_tokens,
            "overlap": embedder.chunk_overlap,
            "chunks": len(chunks),
            "tokens_per_chunk_median": statistics.median(counts),
            "tokens_per_chunk_max": max(counts),
            "seconds_median": round(chunk_s, 3),
            "seconds_runs": [round(t, 3) for t in chunk_times],
            "tokens_per_second": round(doc_tokens / chunk_s),
        },
        "embedding": {
            "model": embedder.model_name,
            "batch_size": embedder.batch_size,
            "chunks": len(batch),
            "tokens_per_chunk_mean": round(
                statistics.mean(embedder.count_tokens(t) for t in batch), 1
            ),
            "seconds_median": round(embed_s, 3),
            "seconds_runs": [round(t, 3) for t in embed_times],
            "chunks_per_second": round(len(batch) / embed_s, 1),
        },
    }

    c, e = result["chunking"], result["embedding"]
    rows = [
        ("document", f"{PDF}: {len(pages)} pages, {len(text):,} chars, {doc_tokens:,} tokens"),
        (
            "chunks (256/32)",
            f"{c['chunks']} (median {c['tokens_per_chunk_median']} tokens, "
            f"max {c['tokens_per_chunk_max']})",
        ),
        ("chunking", f"{c['tokens_per_second']:,} tokens/s ({c['seconds_median']} s)"),
        (
            f"embedding, batch {e['batch_size']}",
            f"{e['chunks_per_second']} chunks/s "
            f"({e['chunks']} chunks of ~{e['tokens_per_chunk_mean']} tokens, "
            f"{e['seconds_median']} s)",
        ),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")

    write_result("chunk_embed", result)


if __name__ == "__main__":
    main()
