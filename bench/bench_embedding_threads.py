"""The local model in a pool of worker processes: how many threads each process should run.

    .venv/bin/python bench/bench_embedding_threads.py [--corpus ../shared/corpus] [--runs 2]
                                                      [--chunks 600] [--processes 4]

ONNX Runtime (and torch) start one thread per core in every process that loads the model, and
ONNX Runtime's threads spin while they wait for work. A Celery worker runs
``CELERY_WORKER_CONCURRENCY`` pool processes (4 by default) on a machine of fewer cores, each
with its own model. This bench embeds the same chunks (bench_onnx.py's: ``--chunks`` spread
over the corpus' text PDFs, Word files and freeculture.pdf) with the default backend
(``onnx-int8``, batch 16) in each layout:

* ``1 process, every core``: one process on every core (the end-to-end bench's bound);
* ``1 process, 1 thread``: what one core does, for the scaling;
* ``N processes, every core each``: the worker before LOCAL_EMBEDDING_THREADS (ONNX Runtime's
  default: a thread per core in each process, spinning);
* ``N processes, every core each, no spinning``: the same with
  ``session.intra_op.allow_spinning`` off;
* ``N processes, cores / N threads each``: the default of LOCAL_EMBEDDING_THREADS (at least 1).

The chunks are split among the processes round-robin, the processes start together (a barrier
after loading the model and one warm-up batch), and a layout's time is its slowest process's.
Layouts take turns, in reverse order every other round, since the machine is shared; chunks/s
per layout are medians over ``--runs`` rounds, with each layout's ratio to the one-process bound
within its round. Writes bench/results/embedding_threads.json.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_onnx import corpus_chunks  # noqa: E402
from results_file import write_result  # noqa: E402

from documents.pipeline.embedders.local import LocalEmbedder  # noqa: E402

MODELS = ROOT / "var" / "models"  # the worker's LOCAL_EMBEDDING_CACHE_DIR default
BATCH = 16
BOUND = "1 process, every core"


def layouts(processes: int, cores: int) -> dict[str, tuple[int, int | None, bool]]:
    """name -> (processes, threads per process or None for the runtime's default, spinning)."""
    return {
        BOUND: (1, None, True),
        "1 process, 1 thread": (1, 1, True),
        f"{processes} processes, every core each": (processes, None, True),
        f"{processes} processes, every core each, no spinning": (processes, None, False),
        f"{processes} processes, {max(1, cores // processes)} thread(s) each (the default)": (
            processes,
            max(1, cores // processes),
            True,
        ),
    }


def _embed_share(texts: list[str], threads: int | None, spinning: bool, barrier) -> float:
    """One pool process: load the model as the worker does, wait for the others, embed."""
    embedder = LocalEmbedder(backend="onnx-int8", cache_dir=MODELS, num_threads=threads)
    encoder = embedder._get_model()
    if not spinning:
        import onnxruntime as ort

        from documents.pipeline.embedders.onnx_model import MATMUL_PER_CHANNEL, onnx_model_file

        path = onnx_model_file(embedder._dir, MODELS, MATMUL_PER_CHANNEL).path
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        encoder.session = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    encoder.encode(texts[:BATCH], batch_size=BATCH)
    barrier.wait()
    start = time.perf_counter()
    encoder.encode(texts, batch_size=BATCH)
    return time.perf_counter() - start


def run_layout(texts: list[str], processes: int, threads: int | None, spinning: bool) -> float:
    context = multiprocessing.get_context("spawn")  # a fresh runtime in each, as after fork
    with context.Manager() as manager:
        barrier = manager.Barrier(processes)
        shares = [(texts[i::processes], threads, spinning, barrier) for i in range(processes)]
        with context.Pool(processes) as pool:
            return max(pool.starmap(_embed_share, shares))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--chunks", type=int, default=600)
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0))
    texts = corpus_chunks(args.corpus, args.chunks)
    LocalEmbedder(backend="onnx-int8", cache_dir=MODELS)._get_model()  # built once, untimed
    variants = layouts(args.processes, cores)
    rates: dict[str, list[float]] = {name: [] for name in variants}
    ratios: dict[str, list[float]] = {name: [] for name in variants}
    loads = []
    for round_number in range(args.runs):
        order = list(variants) if round_number % 2 == 0 else list(variants)[::-1]
        seconds = {}
        for name in order:
            seconds[name] = run_layout(texts, *variants[name])
            rates[name].append(len(texts) / seconds[name])
            print(f"round {round_number + 1} {name}: {rates[name][-1]:.1f} chunks/s", flush=True)
        for name in variants:
            ratios[name].append(seconds[BOUND] / seconds[name])
        loads.append(" ".join(f"{x:.2f}" for x in os.getloadavg()))

    print(f"\n{len(texts)} chunks, onnx-int8, batch {BATCH}, {cores} cores; medians of {args.runs}")
    result = {"cores": cores, "chunks": len(texts), "runs": args.runs, "loads": loads}
    for name in variants:
        rate, ratio = statistics.median(rates[name]), statistics.median(ratios[name])
        print(f"  {name:55} {rate:6.1f} chunks/s  {ratio:.2f} of one process on every core")
        result[name] = {"chunks_per_second": rates[name], "of_bound": ratios[name]}
    print(f"  load average after each round: {loads}")
    write_result("embedding_threads", result)


if __name__ == "__main__":
    main()
