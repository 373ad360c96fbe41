"""What every retrieval benchmark script starts with: a lap timer, and the query sets with
the benchmark tenant read from the corpus (warning about files that no longer extract as they
did when the sets were built)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from retrieval.corpus import check_against_manifest, read_corpus, with_reuploads
from retrieval.evaluate import load_sets

SETS = Path(__file__).resolve().parent / "sets"


class Laps:
    """``lap(name)`` records and prints the seconds since the previous lap in ``walls``."""

    def __init__(self) -> None:
        self.walls: dict[str, float] = {}
        self._clock = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.walls[name] = round(now - self._clock, 1)
        self._clock = now
        print(f"[{name}: {self.walls[name]} s]", flush=True)


@dataclass
class Benchmark:
    sets: dict
    manifest: dict
    documents: list
    problems: list[str]
    tenant: list


def load_benchmark(corpus: Path, sets_dir: Path = SETS) -> Benchmark:
    sets = load_sets(sets_dir)
    manifest = json.loads((sets_dir / "manifest.json").read_text(encoding="utf-8"))
    documents, _ = read_corpus(corpus)
    problems = check_against_manifest(corpus, documents, manifest)
    for problem in problems:
        print(f"WARNING: {problem}", flush=True)
    tenant = with_reuploads(documents, manifest["reuploads"])
    return Benchmark(sets, manifest, documents, problems, tenant)
