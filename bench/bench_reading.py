"""Reading alone: extraction and chunking of bench_end_to_end's files, no embedding.

    .venv/bin/python bench/bench_reading.py [--runs 3] [--against ../old-checkout]

The part of the end-to-end run that is not the model (bench_end_to_end's "extract + chunk"),
timed on its own so a change to it can be judged without ten minutes of embedding. Each
round runs in a fresh process (spaCy and the tokenizer loaded before the clock starts).
With ``--against`` the same rounds also run the code of another checkout (for instance a
``git worktree add ../old <rev>``) on the same files, alternating with this one, and the
ratio is taken within each round, because the machine is shared and noisy. Both read the
same pages, which is checked: the texts of every page must be equal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs in the child, with the checkout under test first on sys.path.
_CHILD = """
import hashlib, json, os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
# the checkout under test's package first: bench_end_to_end puts this one on the path
from documents.pipeline.chunk import _sentencizer, split_text
from documents.pipeline.embedders.local import LocalEmbedder
from documents.pipeline.extract import extract_text
sys.path.insert(1, {bench!r})
from bench_end_to_end import OPTIONS, _type

files = [Path(p) for p in json.loads(sys.argv[2])]
counter = LocalEmbedder(chunk_tokens=256, chunk_overlap=32)
_sentencizer(); counter.count_tokens_batch(["warm up"])
extract = chunk = 0.0
digest = hashlib.sha256()
chunks = 0
for path in files:
    start = time.perf_counter()
    pages = list(extract_text(path, content_type=_type(path), options=OPTIONS).pages)
    middle = time.perf_counter()
    made = split_text(pages, counter=counter, max_tokens=256, overlap=32)
    chunk += time.perf_counter() - middle
    extract += middle - start
    chunks += len(made)
    for page in pages:
        digest.update(page.text.encode())
print(json.dumps({{"extract": extract, "chunk": chunk, "chunks": chunks,
                  "pages": digest.hexdigest(), "load": os.getloadavg()[0]}}))
"""


def _round(code: Path, files: list[Path]) -> dict:
    child = _CHILD.format(bench=str(ROOT / "bench"))
    out = subprocess.run(
        [sys.executable, "-c", child, str(code), json.dumps([str(f) for f in files])],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another checkout, run alternately")
    parser.add_argument("--with-freeculture", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_end_to_end import select_files

    files, _ = select_files(args.corpus.resolve(), with_freeculture=args.with_freeculture)
    codes = {"this": ROOT} | ({"against": args.against.resolve()} if args.against else {})
    rounds: list[dict] = []
    for number in range(args.runs):
        order = list(codes) if number % 2 == 0 else list(reversed(codes))
        result = {name: _round(codes[name], files) for name in order}
        rounds.append(result)
        line = "  ".join(
            f"{name}: extract {r['extract']:.2f} s, chunk {r['chunk']:.2f} s"
            for name, r in result.items()
        )
        print(f"round {number + 1} (load {result['this']['load']:.1f}): {line}", flush=True)
        if args.against and result["this"]["pages"] != result["against"]["pages"]:
            print("  the two checkouts read different page texts", flush=True)
    summary = {"files": len(files), "rounds": rounds}
    for name in codes:
        for stage in ("extract", "chunk"):
            summary[f"{name}_{stage}_median"] = statistics.median(r[name][stage] for r in rounds)
    if args.against:
        for stage in ("extract", "chunk"):
            ratios = [r["this"][stage] / r["against"][stage] for r in rounds]
            summary[f"ratio_{stage}"] = ratios
            print(f"{stage}: this / against per round {', '.join(f'{x:.2f}' for x in ratios)}")
        same = all(r["this"]["pages"] == r["against"]["pages"] for r in rounds)
        print(f"same page texts: {same}")
    print(
        f"{len(files)} files; medians: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in summary.items() if k.endswith("median"))
    )
    out = ROOT / "bench" / "results" / "reading.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
