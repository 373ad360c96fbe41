"""End-to-end benchmark: our pipeline against its embedding bound, and against LlamaIndex.

    .venv/bin/python bench/bench_end_to_end.py [--corpus ../shared/corpus] [--runs 3]
                                               [--no-llamaindex] [--with-freeculture]
                                               [--backend onnx-int8] [--pool-processes 4]

On a fixed set of the corpus' text PDFs and Word files (every ``text-pdf*`` and ``docx*`` kind
whose file ends with text in our extractor; the 607-page synthetic concatenation is left out
because it repeats three of the books; freeculture.pdf is left out unless asked for, to keep
``make bench`` under 25 minutes), in one process:

* ``ours``: what documents/pipeline/run.py does for each document, without the database:
  extract_text (OCR on, as configured) -> split_text (LocalEmbedder counter, 256/32) ->
  embed_chunks (LocalEmbedder's default batch, 16) -> upsert_chunks into a LanceDBStore in a
  temporary directory.
  Timed per stage.
* ``ours_batched``: what the worker does since batches across documents
  (docs/decisions/0007-batches-across-documents.md; ``--batch-chunks``, the default of
  PIPELINE_BATCH_CHUNKS): documents are read and chunked one after another until they hold
  256 chunks, their chunks embedded together (embed_parts: full batches across the documents,
  longest first), then each document's vectors written. ``ours`` is the worker before it:
  one document's chunks per embedding.
* ``ours_readahead``: ``ours_batched`` with the next group of documents read and chunked in a
  thread while the calling thread embeds the current group (one group ahead at most). The
  worker does not do this (decision 0007); it measures what overlapping reading with
  embedding would win in one process.
* ``ours_pool``: the worker's own layout, ``--pool-processes`` spawned processes (the default
  CELERY_WORKER_CONCURRENCY, 4) with LOCAL_EMBEDDING_THREADS' default of cores / processes
  threads each, taking the documents from one shared queue in upload order and batching them
  across documents as the runner does. Timed from the moment every process has loaded its
  model to the last one done; its chunks are checked against ``ours``' file by file.
* ``ours_stream`` (``--stream`` only; a prototype that was measured *slower*, kept so it can
  be re-measured): within each document, a
  thread extracts the pages and packs chunks (chunk.py's own generators, so the chunks are
  identical, which is checked) while the calling thread embeds every full batch of 32 as soon
  as it is packed; then the index write. The hope was that extraction and chunking would hide
  behind embedding (PDFium, Tesseract, the tokenizer and torch release the GIL); measured, the
  chunking thread ran ~7x slower next to torch (spaCy holds the GIL) and the total got longer.
* ``bound``: embedding alone of exactly the chunk texts ``ours`` produced, same model and
  batch size (one SentenceTransformer.encode call over all of them, as the LlamaIndex side's
  bound and the issue's figure are measured; encode orders its batches by characters; with
  an ONNX backend, the encoder's own encode, which orders them the same way).
* ``bound_own``: a stricter bound, our own embedding stage (embed_chunks, batches ordered by
  token count) over all the chunks of all the documents at once, so its batches mix lengths
  less than one document's can. Reported beside the first so neither flatters us.
* ``llamaindex`` (when its virtualenv can be set up, see bench/llamaindex_env.py): the same
  files through SimpleDirectoryReader + IngestionPipeline(SentenceSplitter(256, 32),
  HuggingFaceEmbedding(the same MiniLM, the same batch size)) in a separate process, and its
  own bound. It runs torch, as LlamaIndex does; ours and the bounds run ``--backend``
  (LOCAL_EMBEDDING_BACKEND's default, onnx-int8).

Every measurement is repeated ``--runs`` times, alternating (round 1: ours, bound, [stream],
llamaindex; round 2: the reverse, ...), because the machine is shared and noisy; medians are
reported and the ratios are taken within each round. Writes bench/results/end_to_end.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from documents.errors import PermanentError  # noqa: E402
from documents.pipeline.chunk import (  # noqa: E402
    _counted_units,
    _pack,
    _sentences,
    _sentencizer,
    split_text,
)
from documents.pipeline.embed import Part, embed_chunks, embed_parts  # noqa: E402
from documents.pipeline.embedders.local import LocalEmbedder  # noqa: E402
from documents.pipeline.extract import DOCX, PDF, extract_text  # noqa: E402
from documents.pipeline.stores.lancedb_store import LanceDBStore  # noqa: E402
from documents.pipeline.types import ExtractOptions, VectorRecord  # noqa: E402
from documents.pipeline.vectors import upsert_chunks  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
import llamaindex_env  # noqa: E402
import numpy as np  # noqa: E402
from encode_bound import time_encode  # noqa: E402
from results_file import write_result  # noqa: E402

# run.py's defaults (backoffice/settings.py): OCR at 200 DPI, 2 pages in parallel, English.
OPTIONS = ExtractOptions(max_pages=2000, ocr_languages="eng", ocr_dpi=200, ocr_parallel_pages=2)
LEFT_OUT = {
    "synthetic-concat-607p.pdf": "concatenation of freeculture, GeoTopo and ISO-IEC-29500-2",
}
FREECULTURE = "freeculture.pdf"


def select_files(
    corpus: Path, *, with_freeculture: bool, limit: int | None = None
) -> tuple[list[Path], dict]:
    """The benchmark set, in manifest order, and why each other candidate was left out
    (only the first ``limit`` of it when given)."""
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))
    files, skipped, seen = [], {}, set()
    for row in rows:
        if limit and len(files) == limit:
            break
        name, kind = row["file"], row["kind"]
        if name in seen or not (kind.startswith("text-pdf") or kind.startswith("docx")):
            continue
        seen.add(name)
        if name in LEFT_OUT:
            skipped[name] = LEFT_OUT[name]
            continue
        if name == FREECULTURE and not with_freeculture:
            skipped[name] = "left out to keep make bench short (--with-freeculture adds it)"
            continue
        path = corpus / name
        try:  # "ends with text": our extractor finds text in it
            for _ in extract_text(path, content_type=_type(path), options=OPTIONS).pages:
                pass
        except PermanentError as exc:
            skipped[name] = f"{exc.kind}: {exc}"
            continue
        files.append(path)
    return files, skipped


def _type(path: Path) -> str:
    return PDF if path.suffix.lower() == ".pdf" else DOCX


# --- our pipeline ----------------------------------------------------------------------------


def _prepare(path: Path, embedder: LocalEmbedder, timings: dict) -> tuple:
    """Extract and chunk one document as run.py does (pages listed first, then split)."""
    start = time.perf_counter()
    extraction = extract_text(path, content_type=_type(path), options=OPTIONS)
    pages = list(extraction.pages)
    middle = time.perf_counter()
    chunks = split_text(
        pages, counter=embedder, max_tokens=embedder.chunk_tokens, overlap=embedder.chunk_overlap
    )
    end = time.perf_counter()
    timings["extract"] += middle - start
    timings["chunk"] += end - middle
    return path, len(pages), sum(p.ocr for p in pages), chunks


def _index(store, path: Path, chunks, vectors) -> None:
    """Write one document's vectors as run.py does (upsert, then remove strays)."""
    upsert_chunks(
        store,
        namespace="bench",
        document_id=path.stem,
        metadata={"tenant": "bench", "document_id": path.stem, "title": path.stem},
        chunks=chunks,
        vectors=vectors,
    )


def _embed_and_index(item, embedder, store, timings: dict) -> None:
    path, _, _, chunks = item
    start = time.perf_counter()
    vectors = embed_chunks(
        embedder,
        [c.text for c in chunks],
        title=path.stem,
        token_counts=[c.token_count for c in chunks],
    )
    middle = time.perf_counter()
    _index(store, path, chunks, vectors)
    timings["embed"] += middle - start
    timings["index"] += time.perf_counter() - middle


class _NoCache:
    """The bench embeds without the worker's embedding cache (a first upload's case)."""

    def get_many(self, keys):
        return {}

    def put_many(self, vectors) -> None:
        pass


def _batched(group: list[tuple], embedder, store, timings: dict) -> None:
    """Embed a batch of documents' chunks together, then write each one's vectors, as the
    worker's Batch.embed and finish do."""
    start = time.perf_counter()
    parts = [
        Part(
            texts=[c.text for c in chunks],
            cache=_NoCache(),
            scope="bench",
            title=path.stem,
            token_counts=[c.token_count for c in chunks],
        )
        for path, _, _, chunks in group
    ]
    embedded = embed_parts(embedder, parts)
    middle = time.perf_counter()
    for (path, _, _, chunks), result in zip(group, embedded, strict=True):
        _index(store, path, chunks, result.vectors)
    timings["embed"] += middle - start
    timings["index"] += time.perf_counter() - middle


def run_ours(
    files: list[Path], embedder: LocalEmbedder, *, stream: bool, batch_chunks: int = 0
) -> dict:
    timings = dict.fromkeys(("extract", "chunk", "embed", "index"), 0.0)
    items: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="bench-lancedb-") as tmp:
        store = LanceDBStore(uri=tmp, dimension=embedder.dimension)
        start = time.perf_counter()
        group: list[tuple] = []
        for path in files:
            if stream:
                item = _streamed(path, embedder, store, timings)
            elif batch_chunks:
                item = _prepare(path, embedder, timings)
                group.append(item)
                if sum(len(g[3]) for g in group) >= batch_chunks:
                    _batched(group, embedder, store, timings)
                    group = []
            else:
                item = _prepare(path, embedder, timings)
                _embed_and_index(item, embedder, store, timings)
            items.append(item)
        if group:
            _batched(group, embedder, store, timings)
        wall = time.perf_counter() - start
        store.close()
    return _outcome(wall, timings, items)


def _outcome(wall: float, timings: dict, items: list[tuple]) -> dict:
    """A run of ours: its time and stages, and what it read from the documents ``items``
    (``_prepare``'s tuples, in the order they were read)."""
    return {
        "seconds": wall,
        "stages": timings,
        "documents": len(items),
        "pages": sum(item[1] for item in items),
        "ocr_pages": sum(item[2] for item in items),
        "chunks": sum(len(item[3]) for item in items),
        "texts": [c.text for item in items for c in item[3]],
        "counts": [c.token_count for item in items for c in item[3]],
        "by_file": {str(item[0]): [c.text for c in item[3]] for item in items},
    }


def run_ours_readahead(files: list[Path], embedder: LocalEmbedder, batch_chunks: int) -> dict:
    """``ours_batched`` with the next batch of documents read and chunked in a thread while the
    calling thread embeds the current one (ONNX Runtime and torch release the GIL while they
    compute; PDFium, pdfplumber and spaCy hold it in turns with the index writes)."""
    timings = dict.fromkeys(("extract", "chunk", "embed", "index"), 0.0)
    groups: queue.Queue = queue.Queue(maxsize=1)  # one batch read ahead, no more
    done = object()

    def read() -> None:
        try:
            group: list[tuple] = []
            for path in files:
                group.append(_prepare(path, embedder, timings))
                if sum(len(g[3]) for g in group) >= batch_chunks:
                    groups.put(group)
                    group = []
            if group:
                groups.put(group)
        except BaseException as exc:  # handed to the embedding thread
            groups.put(exc)
        finally:
            groups.put(done)

    items: list[tuple] = []
    with tempfile.TemporaryDirectory(prefix="bench-lancedb-") as tmp:
        store = LanceDBStore(uri=tmp, dimension=embedder.dimension)
        start = time.perf_counter()
        reader = threading.Thread(target=read, name="read-ahead", daemon=True)
        reader.start()
        while (group := groups.get()) is not done:
            if isinstance(group, BaseException):
                raise group
            _batched(group, embedder, store, timings)
            items += group
        reader.join()
        wall = time.perf_counter() - start
        store.close()
    return _outcome(wall, timings, items)


def _pool_process(
    files, warm_file: str, backend: str, threads: int, batch_chunks: int, barrier
) -> dict:
    """One worker pool process of ``ours_pool``: load the model and the readers (a worker
    process does that once for all its documents, as this process' parent did when it chose
    the files), wait for the others, then take documents from the shared queue in order and
    embed them in batches across documents, as the runner gathers queued documents, until the
    queue is empty."""
    import queue as queue_module

    embedder = LocalEmbedder(
        chunk_tokens=256,
        chunk_overlap=32,
        backend=backend,
        cache_dir=ROOT / "var" / "models",
        num_threads=threads,
    )
    _sentencizer()
    embedder.embed_documents(["warm up the model"] * 16)
    _prepare(Path(warm_file), embedder, dict.fromkeys(("extract", "chunk"), 0.0))
    timings = dict.fromkeys(("extract", "chunk", "embed", "index"), 0.0)
    texts: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-lancedb-") as tmp:
        store = LanceDBStore(uri=tmp, dimension=embedder.dimension)
        # a worker process writes many documents: its first write's set-up is not per document
        store.upsert("warm", [VectorRecord(id="x", values=[0.0] * embedder.dimension)])
        barrier.wait()
        start = time.perf_counter()
        group: list[tuple] = []
        while True:
            try:
                path = files.get_nowait()
            except queue_module.Empty:
                break
            item = _prepare(Path(path), embedder, timings)
            texts[path] = [c.text for c in item[3]]
            group.append(item)
            if sum(len(g[3]) for g in group) >= batch_chunks:
                _batched(group, embedder, store, timings)
                group = []
        if group:
            _batched(group, embedder, store, timings)
        finished = time.perf_counter()
        store.close()
    return {"start": start, "finished": finished, "stages": timings, "texts": texts}


def run_ours_pool(
    files: list[Path], backend: str, processes: int, batch_chunks: int, reference: dict
) -> dict:
    """The worker's layout: ``processes`` pool processes (CELERY_WORKER_CONCURRENCY), each
    with LOCAL_EMBEDDING_THREADS' default of cores / processes threads, sharing the documents
    in upload order. Timed from the moment all have loaded the model to the last one done."""
    import multiprocessing

    threads = max(1, len(os.sched_getaffinity(0)) // processes)
    context = multiprocessing.get_context("spawn")  # fresh runtimes, as after a worker's fork
    with context.Manager() as manager:
        shared = manager.Queue()
        for path in files:
            shared.put(str(path))
        barrier = manager.Barrier(processes)
        with context.Pool(processes) as pool:
            outcomes = pool.starmap(
                _pool_process,
                [(shared, str(files[0]), backend, threads, batch_chunks, barrier)] * processes,
            )
    texts = {path: chunks for outcome in outcomes for path, chunks in outcome["texts"].items()}
    if texts != reference:
        raise AssertionError("ours_pool produced different chunks")
    stages = {k: sum(o["stages"][k] for o in outcomes) for k in outcomes[0]["stages"]}
    wall = max(o["finished"] for o in outcomes) - min(o["start"] for o in outcomes)
    return {"seconds": wall, "stages": stages, "processes": processes, "threads": threads}


def _streamed(path: Path, embedder: LocalEmbedder, store, timings: dict) -> tuple:
    """One document with extraction + chunking in a thread, feeding embedding batch by batch.

    In run.py this is: split_text made a generator (chunk.py: ``iter_chunks`` returning
    ``_pack(...)`` unlisted), extraction + ``iter_chunks`` run in a thread that puts chunks on
    a queue, and the EMBEDDING stage takes ``embedder.batch_size`` chunks at a time from it."""
    chunks_q: queue.Queue = queue.Queue(maxsize=4 * embedder.batch_size)
    done = object()
    seen = {"pages": 0, "ocr": 0, "extract": 0.0, "total": 0.0}

    def timed_pages(pages):
        while True:
            t = time.perf_counter()
            page = next(pages, None)
            seen["extract"] += time.perf_counter() - t
            if page is None:
                return
            seen["pages"] += 1
            seen["ocr"] += page.ocr
            yield page

    def produce():
        t = time.perf_counter()
        try:
            extraction = extract_text(path, content_type=_type(path), options=OPTIONS)
            count = embedder.count_tokens
            overhead = count("")
            units = _counted_units(
                _sentences(timed_pages(extraction.pages)),
                embedder,
                embedder.chunk_tokens,
                overhead,
            )
            for chunk in _pack(
                units, count, embedder.chunk_tokens, embedder.chunk_overlap, overhead
            ):
                chunks_q.put(chunk)
        except BaseException as exc:  # handed to the consumer
            chunks_q.put(exc)
        finally:
            seen["total"] = time.perf_counter() - t
            chunks_q.put(done)

    thread = threading.Thread(target=produce, name="extract-chunk", daemon=True)
    thread.start()
    chunks, vectors, batch = [], [], []
    embed_seconds = 0.0
    while True:
        item = chunks_q.get()
        if isinstance(item, BaseException):
            raise item
        if item is not done:
            batch.append(item)
        if batch and (item is done or len(batch) == embedder.batch_size):
            t = time.perf_counter()
            vectors.append(embed_chunks(embedder, [c.text for c in batch], title=path.stem))
            embed_seconds += time.perf_counter() - t
            chunks += batch
            batch = []
        if item is done:
            break
    thread.join()
    t = time.perf_counter()
    _index(store, path, chunks, np.concatenate(vectors))
    timings["index"] += time.perf_counter() - t
    timings["embed"] += embed_seconds
    timings["extract"] += seen["extract"]
    timings["chunk"] += seen["total"] - seen["extract"]
    return path, seen["pages"], seen["ocr"], chunks


def run_bound_own(texts: list[str], counts: list[int], embedder: LocalEmbedder) -> float:
    start = time.perf_counter()
    embed_chunks(embedder, texts, token_counts=counts)
    return time.perf_counter() - start


def run_bound(texts: list[str], embedder: LocalEmbedder) -> float:
    model = embedder._get_model()
    if embedder.backend_in_use == "torch":
        return time_encode(model, texts, embedder.batch_size)
    start = time.perf_counter()  # OnnxEncoder.encode: longest first by characters, as encode
    model.encode(texts, batch_size=embedder.batch_size)
    return time.perf_counter() - start


# --- LlamaIndex --------------------------------------------------------------------------------


def run_llamaindex(python: Path, files: list[Path], batch_size: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as listing:
        json.dump([str(f) for f in files], listing)
    try:
        proc = subprocess.run(
            [
                str(python),
                str(ROOT / "bench" / "llamaindex_pipeline.py"),
                "--files",
                listing.name,
                "--batch-size",
                str(batch_size),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
        )
    finally:
        os.unlink(listing.name)
    if proc.returncode != 0:
        raise RuntimeError(f"llamaindex_pipeline.py failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --- main --------------------------------------------------------------------------------------


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-llamaindex", action="store_true")
    parser.add_argument(
        "--stream",
        action="store_true",
        help="also time the streamed prototype (measured slower here; off in make bench)",
    )
    parser.add_argument("--with-freeculture", action="store_true")
    parser.add_argument("--limit", type=int, help="only the first N files (for trying it out)")
    parser.add_argument(
        "--batch-chunks",
        type=int,
        default=256,
        help="ours_batched: chunks a batch of documents holds (PIPELINE_BATCH_CHUNKS)",
    )
    parser.add_argument(
        "--pool-processes",
        type=int,
        default=4,
        help="ours_pool: the worker's pool processes (CELERY_WORKER_CONCURRENCY's default)",
    )
    parser.add_argument(
        "--backend",
        default="onnx-int8",
        choices=("torch", "onnx", "onnx-int8"),
        help="ours and the bounds: the local model's backend (LOCAL_EMBEDDING_BACKEND's default)",
    )
    args = parser.parse_args()
    corpus = args.corpus.resolve()

    files, skipped = select_files(corpus, with_freeculture=args.with_freeculture, limit=args.limit)
    # the worker's default backend and batch size, one process on every core
    embedder = LocalEmbedder(
        chunk_tokens=256, chunk_overlap=32, backend=args.backend, cache_dir=ROOT / "var" / "models"
    )
    _sentencizer()  # spaCy's start-up and the model load are per process, not per document
    embedder.embed_documents(["warm up the model and torch's thread pool"] * 32)
    with tempfile.TemporaryDirectory(prefix="bench-lancedb-") as tmp:  # import + first connect
        warm = LanceDBStore(uri=tmp, dimension=embedder.dimension)
        warm.upsert("warm", [VectorRecord(id="x", values=[0.0] * embedder.dimension)])
        warm.close()

    li_python, li_status = (None, "skipped (--no-llamaindex)")
    if not args.no_llamaindex:
        li_python, li_status = llamaindex_env.ensure()
        print(f"LlamaIndex: {li_status}", flush=True)

    variants = ["ours", "ours_batched", "ours_readahead", "ours_pool", "bound", "bound_own"] + (
        ["ours_stream"] if args.stream else []
    )
    if li_python:
        variants.append("llamaindex")
    rounds: list[dict] = []
    reference_texts: list[str] | None = None
    reference_counts: list[int] = []
    reference_by_file: dict[str, list[str]] = {}
    summary_ours = None
    for r in range(args.runs):
        row: dict = {"load_before": load()}
        # alternate the order from round to round so no variant always runs first
        order = variants if r % 2 == 0 else list(reversed(variants))
        if reference_texts is None:  # the others are checked against ours' chunks
            order = variants
        for variant in order:
            if variant in ("ours", "ours_batched", "ours_readahead", "ours_stream"):
                if variant == "ours_readahead":
                    result = run_ours_readahead(files, embedder, args.batch_chunks)
                else:
                    result = run_ours(
                        files,
                        embedder,
                        stream=variant == "ours_stream",
                        batch_chunks=args.batch_chunks if variant == "ours_batched" else 0,
                    )
                texts = result.pop("texts")
                counts = result.pop("counts")
                by_file = result.pop("by_file", None)
                if reference_texts is None:
                    reference_texts, reference_counts = texts, counts
                    reference_by_file = by_file
                elif texts != reference_texts:
                    raise AssertionError(f"{variant} produced different chunks")
                row[variant] = {
                    "seconds": round(result["seconds"], 2),
                    "stages": {k: round(v, 2) for k, v in result["stages"].items()},
                }
                if variant == "ours":
                    summary_ours = result
            elif variant == "ours_pool":
                result = run_ours_pool(
                    files, args.backend, args.pool_processes, args.batch_chunks, reference_by_file
                )
                row[variant] = {
                    "seconds": round(result["seconds"], 2),
                    "stages": {k: round(v, 2) for k, v in result["stages"].items()},
                    "processes": result["processes"],
                    "threads": result["threads"],
                }
            elif variant == "bound":
                row["bound"] = {"seconds": round(run_bound(reference_texts, embedder), 2)}
            elif variant == "bound_own":
                seconds = run_bound_own(reference_texts, reference_counts, embedder)
                row["bound_own"] = {"seconds": round(seconds, 2)}
            else:
                try:
                    row["llamaindex"] = run_llamaindex(li_python, files, embedder.batch_size)
                except Exception as exc:  # report, keep our figures
                    li_status = f"run failed: {exc}"
                    print(li_status, file=sys.stderr)
                    variants.remove("llamaindex")
                    li_python = None
            print(f"round {r + 1} {variant}: {_brief(row.get(variant))}", flush=True)
        row["load_after"] = load()
        row["ratio_bound_over_ours"] = round(row["bound"]["seconds"] / row["ours"]["seconds"], 3)
        row["ratio_bound_own_over_ours"] = round(
            row["bound_own"]["seconds"] / row["ours"]["seconds"], 3
        )
        row["ratio_bound_own_over_ours_batched"] = round(
            row["bound_own"]["seconds"] / row["ours_batched"]["seconds"], 3
        )
        row["ratio_bound_over_ours_batched"] = round(
            row["bound"]["seconds"] / row["ours_batched"]["seconds"], 3
        )
        row["ratio_bound_own_over_ours_readahead"] = round(
            row["bound_own"]["seconds"] / row["ours_readahead"]["seconds"], 3
        )
        row["ratio_bound_own_over_ours_pool"] = round(
            row["bound_own"]["seconds"] / row["ours_pool"]["seconds"], 3
        )
        if "ours_stream" in row:
            row["ratio_bound_over_ours_stream"] = round(
                row["bound"]["seconds"] / row["ours_stream"]["seconds"], 3
            )
        if "llamaindex" in row:
            li = row["llamaindex"]
            row["llamaindex_ratio_own_bound"] = round(li["bound_seconds"] / li["seconds"], 3)
            row["ours_over_llamaindex_seconds"] = round(row["ours"]["seconds"] / li["seconds"], 3)
            row["ours_batched_over_llamaindex_seconds"] = round(
                row["ours_batched"]["seconds"] / li["seconds"], 3
            )
            if "ours_stream" in row:
                row["ours_stream_over_llamaindex_seconds"] = round(
                    row["ours_stream"]["seconds"] / li["seconds"], 3
                )
        rounds.append(row)

    result = summarise(files, skipped, rounds, summary_ours, embedder, li_status, args.batch_chunks)
    print_table(result)
    write_result("end_to_end", result)


def _brief(value) -> str:
    if not value:
        return "-"
    if "stages" in value:
        stages = " ".join(f"{k}={v}" for k, v in value["stages"].items())
        return f"{value['seconds']} s ({stages})"
    if "bound_seconds" in value:
        return f"{value['seconds']} s, its bound {value['bound_seconds']} s, {value['nodes']} nodes"
    return f"{value['seconds']} s"


def summarise(files, skipped, rounds, ours, embedder, li_status, batch_chunks) -> dict:
    def med(path: str) -> float | None:
        values = []
        for row in rounds:
            value = row
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                values.append(value)
        return round(median(values), 3) if values else None

    docs, pages = ours["documents"], ours["pages"]
    summary: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "files": [f.name for f in files],
        "left_out": skipped,
        "documents": docs,
        "pages": pages,
        "ocr_pages": ours["ocr_pages"],
        "chunks": ours["chunks"],
        "model": embedder.model_name,
        "backend": embedder.backend_in_use,
        "chunk_tokens": embedder.chunk_tokens,
        "chunk_overlap": embedder.chunk_overlap,
        "batch_size": embedder.batch_size,
        "batch_chunks": batch_chunks,
        "runs": len(rounds),
        "rounds": rounds,
        "median": {},
        "llamaindex_status": li_status,
    }
    m = summary["median"]
    for variant in (
        "ours",
        "ours_batched",
        "ours_readahead",
        "ours_pool",
        "ours_stream",
        "bound",
        "bound_own",
    ):
        seconds = med(f"{variant}.seconds")
        if seconds is None:
            continue
        m[variant] = {"seconds": seconds}
        if not variant.startswith("bound"):
            m[variant]["docs_per_min"] = round(docs / seconds * 60, 1)
            m[variant]["pages_per_min"] = round(pages / seconds * 60, 1)
            m[variant]["stages"] = {
                k: med(f"{variant}.stages.{k}") for k in ("extract", "chunk", "embed", "index")
            }
    m["bound"]["chunks_per_s"] = round(ours["chunks"] / m["bound"]["seconds"], 1)
    m["ratio_bound_over_ours"] = med("ratio_bound_over_ours")
    m["ratio_bound_own_over_ours"] = med("ratio_bound_own_over_ours")
    m["ratio_bound_own_over_ours_batched"] = med("ratio_bound_own_over_ours_batched")
    m["ratio_bound_over_ours_batched"] = med("ratio_bound_over_ours_batched")
    m["ratio_bound_own_over_ours_readahead"] = med("ratio_bound_own_over_ours_readahead")
    m["ratio_bound_own_over_ours_pool"] = med("ratio_bound_own_over_ours_pool")
    if "ours_stream" in m:
        m["ratio_bound_over_ours_stream"] = med("ratio_bound_over_ours_stream")
    if med("llamaindex.seconds") is not None:
        li_docs = rounds[0]["llamaindex"]["documents"]
        seconds = med("llamaindex.seconds")
        m["llamaindex"] = {
            "seconds": seconds,
            "bound_seconds": med("llamaindex.bound_seconds"),
            "stages": {k: med(f"llamaindex.stages.{k}") for k in rounds[0]["llamaindex"]["stages"]},
            "docs_per_min": round(docs / seconds * 60, 1),
            "pages_per_min": round(pages / seconds * 60, 1),
            "reader_documents": li_docs,
            "nodes": rounds[0]["llamaindex"]["nodes"],
            "node_minilm_tokens_mean": rounds[0]["llamaindex"].get("node_minilm_tokens_mean"),
            "nodes_over_256_minilm_tokens": rounds[0]["llamaindex"].get("nodes_over_256"),
        }
        m["llamaindex_ratio_own_bound"] = med("llamaindex_ratio_own_bound")
        m["ours_over_llamaindex_seconds"] = med("ours_over_llamaindex_seconds")
        m["ours_batched_over_llamaindex_seconds"] = med("ours_batched_over_llamaindex_seconds")
        if "ours_stream" in m:
            m["ours_stream_over_llamaindex_seconds"] = med("ours_stream_over_llamaindex_seconds")
    return summary


def print_table(result: dict) -> None:
    m = result["median"]
    print(
        f"\nEnd to end, {result['documents']} documents, {result['pages']} pages "
        f"({result['ocr_pages']} OCR), {result['chunks']} chunks of <= {result['chunk_tokens']} "
        f"tokens; medians of {result['runs']} alternating runs"
    )
    print(f"  {'':24} {'s':>8} {'docs/min':>9} {'pages/min':>10}  stages (s)")
    for key, label in (
        ("ours", "ours, one doc a batch"),
        ("ours_batched", "ours, across documents"),
        ("ours_readahead", "ours, reading ahead"),
        ("ours_pool", "ours, worker's pool"),
        ("ours_stream", "ours, streamed (proto)"),
        ("llamaindex", "LlamaIndex"),
    ):
        if key in m:
            v = m[key]
            stages = " ".join(f"{k} {s}" for k, s in v["stages"].items())
            print(
                f"  {label:24} {v['seconds']:>8} {v['docs_per_min']:>9} "
                f"{v['pages_per_min']:>10}  {stages}"
            )
    print(
        f"  {'bound (embedding only)':24} {m['bound']['seconds']:>8}   "
        f"{m['bound']['chunks_per_s']} chunks/s"
    )
    print(
        f"  {'bound, our batching':24} {m['bound_own']['seconds']:>8}   "
        "embed_chunks over all chunks at once"
    )
    print(
        f"  across documents: bound / ours {m['ratio_bound_over_ours_batched']}; "
        f"stricter bound / ours {m['ratio_bound_own_over_ours_batched']} (target >= 0.95); "
        f"reading ahead: stricter bound / ours {m['ratio_bound_own_over_ours_readahead']}; "
        f"the worker's pool: stricter bound / ours {m['ratio_bound_own_over_ours_pool']}"
    )
    print(
        f"  one document a batch: bound / ours: {m['ratio_bound_over_ours']}; "
        f"stricter bound / ours: {m['ratio_bound_own_over_ours']}"
        + (
            f"; streamed prototype: {m['ratio_bound_over_ours_stream']}"
            if "ratio_bound_over_ours_stream" in m
            else ""
        )
    )
    if "llamaindex" in m:
        li = m["llamaindex"]
        print(
            f"  LlamaIndex: {li['nodes']} nodes (mean {li['node_minilm_tokens_mean']} MiniLM "
            f"tokens, {li['nodes_over_256_minilm_tokens']} over 256), own bound "
            f"{li['bound_seconds']} s, ratio {m['llamaindex_ratio_own_bound']}; "
            f"ours / LlamaIndex seconds: {m['ours_over_llamaindex_seconds']}, across documents "
            f"{m['ours_batched_over_llamaindex_seconds']}"
        )
    else:
        print(f"  LlamaIndex: {result['llamaindex_status']}")
    loads = [(r["load_before"], r["load_after"]) for r in result["rounds"]]
    print(f"  load average (1/5/15 min) before/after each round: {loads}")


if __name__ == "__main__":
    main()
