"""Local embedding: torch against ONNX Runtime fp32 and int8, speed and agreement.

    .venv/bin/python bench/bench_onnx.py [--corpus ../shared/corpus] [--runs 2]
                                         [--chunks 600] [--variants torch,onnx,onnx-int8,...]

The chunks: every chunk that the pipeline's own stages (extract_text, then split_text with
the LocalEmbedder counter at 256/32) make from the end-to-end bench's documents (the corpus'
text PDFs and Word files) and from freeculture.pdf, of which ``--chunks`` are taken evenly
spaced, so books, forms, slides, tables and non-English text are all in.

The variants, each in its own process (one runtime's thread pool never waits beside the
other's), all at batch 16 on every core. The machine is shared, and its load can change several
times over the minutes one variant takes, so the variants take turns batch by batch: batch k
goes to every variant, one process at a time and in a rotating order, before batch k+1 goes to
any. Each variant's time is the sum of its batches; every variant met the same load.

* ``torch``: LocalEmbedder(backend="torch"), what the workers run by default;
* ``onnx``: LocalEmbedder(backend="onnx"), the fp32 export;
* ``onnx-int8``: LocalEmbedder(backend="onnx-int8"), the int8 file the backend uses
  (MatMul weights only, per channel);
* ``q:<preset>``: the same ONNX Runtime encoder on the other quantisation presets of
  ``onnx_model.QUANTISATIONS`` (optimum's avx512_vnni and avx2 presets, which quantise every
  operator, and per-tensor variants).

For each: chunks/s (median of ``--runs`` passes over the chunks), its ratio to torch's within
each pass, and the cosine of each chunk's vector with torch's: mean, 1st percentile and worst.
Also the time to build each ONNX file from the package (export, quantisation), which a machine
pays once.
Writes bench/results/onnx.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
from results_file import write_result  # noqa: E402

from documents.pipeline.embedders.local import LocalEmbedder, _model_dir  # noqa: E402
from documents.pipeline.embedders.onnx_model import (  # noqa: E402
    MATMUL_PER_CHANNEL,
    QUANTISATIONS,
    OnnxEncoder,
    onnx_model_file,
)

BATCH = 16
BACKENDS = ("torch", "onnx", "onnx-int8")
DEFAULT_VARIANTS = ["torch", "onnx", "onnx-int8"] + [
    f"q:{name}" for name in QUANTISATIONS if name != MATMUL_PER_CHANNEL.name
]


def corpus_chunks(corpus: Path, count: int) -> list[str]:
    from bench_end_to_end import FREECULTURE, OPTIONS, _type, select_files

    from documents.pipeline.chunk import split_text
    from documents.pipeline.extract import extract_text

    files, _ = select_files(corpus, with_freeculture=False)
    files.append(corpus / FREECULTURE)
    counter = LocalEmbedder()
    texts: list[str] = []
    for path in files:
        pages = extract_text(path, content_type=_type(path), options=OPTIONS).pages
        chunks = split_text(pages, counter=counter, max_tokens=256, overlap=32)
        texts.extend(c.text for c in chunks)
    step = len(texts) / count
    return [texts[int(i * step)] for i in range(min(count, len(texts)))]


def child(variant: str, texts_file: Path, cache: Path) -> None:
    """One variant in this process: load and warm up, then embed the batch named on each line
    of stdin and answer with the seconds it took; at EOF, write every vector to stdout."""
    texts = json.loads(texts_file.read_text(encoding="utf-8"))
    if variant in BACKENDS:
        embedder = LocalEmbedder(batch_size=BATCH, backend=variant, cache_dir=cache)
        embedder.embed_documents(texts[:32])
        if embedder.backend_in_use != variant:
            raise SystemExit(f"{variant} fell back to {embedder.backend_in_use}")

        def embed(batch):
            return np.array(embedder.embed_documents(batch), dtype=np.float32)
    else:
        path = onnx_model_file(_model_dir(), cache, QUANTISATIONS[variant[2:]]).path
        encoder = OnnxEncoder(path, _model_dir(), max_seq_length=256, num_threads=None)
        encoder.encode(texts[:32], batch_size=BATCH)

        def embed(batch):
            return encoder.encode(batch, batch_size=BATCH)

    vectors: dict[int, list] = {}
    print("ready", flush=True)
    for line in sys.stdin:
        k = int(line)
        start = time.perf_counter()
        out = embed(texts[k * BATCH : (k + 1) * BATCH])
        print(time.perf_counter() - start, flush=True)
        vectors[k] = out.tolist()
    print(json.dumps([v for k in sorted(vectors) for v in vectors[k]]), flush=True)


def interleaved_pass(variants: list[str], texts_file: Path, cache: Path, n: int) -> tuple:
    """One pass over the chunks by every variant, batch by batch in turn; returns each
    variant's total seconds and its vectors."""
    procs = {
        v: subprocess.Popen(
            [sys.executable, __file__, "--child", v, str(texts_file), str(cache)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
        )
        for v in variants
    }
    try:
        for v, proc in procs.items():  # all loaded before the first batch is timed
            if proc.stdout.readline().strip() != "ready":
                raise SystemExit(f"{v} did not start")
        seconds = dict.fromkeys(variants, 0.0)
        batches = (n + BATCH - 1) // BATCH
        for k in range(batches):
            shift = k % len(variants)
            for v in variants[shift:] + variants[:shift]:
                procs[v].stdin.write(f"{k}\n")
                procs[v].stdin.flush()
                seconds[v] += float(procs[v].stdout.readline())
        vectors = {}
        for v, proc in procs.items():
            proc.stdin.close()
            vectors[v] = np.array(json.loads(proc.stdout.readline()), dtype=np.float32)
            proc.wait(timeout=60)
        return seconds, vectors
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()


def build_times(cache: Path, variants: list[str]) -> dict:
    """Seconds to export the fp32 file and to quantise each int8 one, into an empty folder."""
    times = {}
    start = time.perf_counter()
    onnx_model_file(_model_dir(), cache, None)
    times["export fp32"] = round(time.perf_counter() - start, 1)
    for variant in variants:
        name = MATMUL_PER_CHANNEL.name if variant == "onnx-int8" else variant[2:]
        if variant == "onnx-int8" or variant.startswith("q:"):
            start = time.perf_counter()
            onnx_model_file(_model_dir(), cache, QUANTISATIONS[name])
            times[f"quantise {name}"] = round(time.perf_counter() - start, 1)
    return times


def agreement(vectors: np.ndarray, reference: np.ndarray) -> dict:
    cosines = np.sum(vectors * reference, axis=1) / (
        np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
    )
    return {
        "cosine_mean": round(float(cosines.mean()), 4),
        "cosine_p1": round(float(np.percentile(cosines, 1)), 4),
        "cosine_worst": round(float(cosines.min()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=600)
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS))
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "TEXTS", "CACHE"))
    args = parser.parse_args()
    if args.child:
        variant, texts_file, cache = args.child
        child(variant, Path(texts_file), Path(cache))
        return

    variants = args.variants.split(",")
    if variants[0] != "torch":
        variants.insert(0, "torch")
    texts = corpus_chunks(args.corpus, args.chunks)
    counts = LocalEmbedder().count_tokens_batch(texts)
    print(
        f"{len(texts)} chunks, {statistics.mean(counts):.0f} tokens on average "
        f"(median {statistics.median(counts):.0f}, max {max(counts)})",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cache = work / "cache"
        builds = build_times(cache, variants)
        print("build:", builds, flush=True)
        texts_file = work / "texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        seconds: dict[str, list[float]] = {v: [] for v in variants}
        vectors: dict[str, np.ndarray] = {}
        for pass_no in range(args.runs):
            totals, pass_vectors = interleaved_pass(variants, texts_file, cache, len(texts))
            for v in variants:
                seconds[v].append(totals[v])
                vectors.setdefault(v, pass_vectors[v])
            print(
                f"pass {pass_no + 1} (load {os.getloadavg()[0]:.1f}): "
                + ", ".join(f"{v} {len(texts) / totals[v]:.1f}" for v in variants)
                + " chunks/s",
                flush=True,
            )

    reference = vectors["torch"]
    results = {}
    for variant in variants:
        ratios = [t / s for t, s in zip(seconds["torch"], seconds[variant], strict=True)]
        results[variant] = {
            "chunks_per_second": round(len(texts) / statistics.median(seconds[variant]), 1),
            "seconds_runs": [round(s, 2) for s in seconds[variant]],
            "ratio_to_torch": round(statistics.median(ratios), 2),
            "ratio_to_torch_runs": [round(r, 2) for r in ratios],
            **agreement(vectors[variant], reference),
        }
    result = {
        "chunks": len(texts),
        "tokens_mean": round(statistics.mean(counts), 1),
        "batch_size": BATCH,
        "runs": args.runs,
        "cpus": os.cpu_count(),
        "build_seconds": builds,
        "default_int8": MATMUL_PER_CHANNEL.name,
        "variants": results,
    }
    width = max(len(v) for v in variants)
    print(f"\n{'variant':<{width}}  chunks/s  x torch  cosine mean / p1 / worst")
    for variant, r in results.items():
        print(
            f"{variant:<{width}}  {r['chunks_per_second']:>8}  {r['ratio_to_torch']:>7}  "
            f"{r['cosine_mean']} / {r['cosine_p1']} / {r['cosine_worst']}"
        )
    write_result("onnx", result)


if __name__ == "__main__":
    main()
