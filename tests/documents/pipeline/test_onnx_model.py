"""The ONNX files built from the packaged all-MiniLM-L6-v2: cache, concurrent builds, input ids.

Real export (torch.onnx), real quantisation and ONNX Runtime; each test that needs an empty
cache pays one export (a few seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from documents.pipeline.embedders.local import LocalEmbedder, _model_dir
from documents.pipeline.embedders.onnx_model import (
    MATMUL_PER_CHANNEL,
    OnnxEncoder,
    _file_name,
    onnx_model_file,
)

ROOT = Path(__file__).resolve().parents[3]


def kinds(cache: Path) -> list[str]:
    """What the cache folder holds, by kind: the lock file aside, names end with the kind."""
    return sorted(p.name.split("-", 2)[-1] for p in cache.iterdir() if p.name != ".build.lock")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


def test_a_second_call_reuses_the_cached_file_without_writing_it_again(cache):
    first = onnx_model_file(_model_dir(), cache, MATMUL_PER_CHANNEL)
    written = first.path.stat().st_mtime_ns
    again = onnx_model_file(_model_dir(), cache, MATMUL_PER_CHANNEL)
    assert first.built and not again.built
    assert again.path == first.path and again.path.stat().st_mtime_ns == written
    # the fp32 export it was quantised from is kept for the plain onnx backend, nothing else
    assert kinds(cache) == ["fp32.onnx", "int8-matmul-per-channel.onnx"]
    # and an embedder pointed at the same folder loads it rather than building another
    embedder = LocalEmbedder(backend="onnx-int8", cache_dir=cache)
    embedder.embed_query("warm")
    assert embedder.backend_in_use == "onnx-int8"
    assert again.path.stat().st_mtime_ns == written
    assert kinds(cache) == ["fp32.onnx", "int8-matmul-per-channel.onnx"]


def test_the_embedder_runs_onnx_runtime_on_the_threads_it_was_given(cache):
    for threads in (1, 2):
        embedder = LocalEmbedder(backend="onnx-int8", cache_dir=cache, num_threads=threads)
        options = embedder._get_model().session.get_session_options()
        assert (options.intra_op_num_threads, options.inter_op_num_threads) == (threads, 1)


def test_the_network_receives_exactly_the_ids_the_torch_backend_feeds_it(cache):
    torch_model = LocalEmbedder()._get_model()
    path = onnx_model_file(_model_dir(), cache, MATMUL_PER_CHANNEL).path
    encoder = OnnxEncoder(path, _model_dir(), max_seq_length=256, num_threads=None)
    texts = [
        "Naïve café owners in Zürich paid 1,234.56 CHF — twice!",
        "猫がマットの上に座った。 Ελληνικά κείμενα. עברית",
        "  leading and trailing spaces  ",
        "",
        "antidisestablishmentarianism " * 120,  # over 256 word pieces: both cut at 256
    ]
    # what SentenceTransformer.encode feeds the network for each batch
    ours, theirs = encoder.tokenize(texts), torch_model.preprocess(texts)
    assert ours["input_ids"].shape[1] == 256
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(ours[name], theirs[name].numpy(), err_msg=name)


def test_four_processes_starting_at_once_build_one_model_and_all_use_it(tmp_path):
    cache, go = tmp_path / "cache", tmp_path / "go"
    # Each process imports everything first, then waits for the same signal, so the four
    # reach the empty cache together, as four prefork workers do on their first document.
    code = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "import torch, onnxruntime\n"
        "from documents.pipeline.embedders.local import LocalEmbedder, _model_dir\n"
        "from documents.pipeline.embedders.onnx_model import MATMUL_PER_CHANNEL, onnx_model_file\n"
        "cache, go = Path(sys.argv[1]), Path(sys.argv[2])\n"
        "print('ready', flush=True)\n"
        "while not go.exists(): time.sleep(0.01)\n"
        "built = onnx_model_file(_model_dir(), cache, MATMUL_PER_CHANNEL)\n"
        "embedder = LocalEmbedder(backend='onnx-int8', cache_dir=cache)\n"
        "vector = embedder.embed_query('the same sentence in every process')\n"
        "print(json.dumps({'built': built.built, 'path': str(built.path),\n"
        "                  'backend': embedder.backend_in_use, 'vector': vector[:8]}))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(cache), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0]
    results = [json.loads(out.strip().splitlines()[-1]) for out in outputs]
    assert sum(r["built"] for r in results) == 1
    assert {r["path"] for r in results} == {results[0]["path"]}
    assert {r["backend"] for r in results} == {"onnx-int8"}
    np.testing.assert_allclose([r["vector"] for r in results], [results[0]["vector"]] * 4)
    # one fp32 export, one int8 file, no temporary file left behind
    assert kinds(cache) == ["fp32.onnx", "int8-matmul-per-channel.onnx"]


def test_a_build_that_died_half_way_leaves_nothing_that_is_loaded(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    # what a worker killed mid-export leaves: a partial file under a temporary name
    name = _file_name(_model_dir(), MATMUL_PER_CHANNEL)
    (cache / f"{name}.tmpabc123").write_bytes(b"half an onnx file")
    start = time.time()
    built = onnx_model_file(_model_dir(), cache, MATMUL_PER_CHANNEL)
    assert built.built and built.path.name == name and built.path.stat().st_mtime >= start
    assert not list(cache.glob("*.tmp*"))
