"""all-MiniLM-L6-v2 through ONNX Runtime, built once from the packaged model files and cached.

Why not sentence-transformers' own ``backend="onnx"``: it loads through optimum-onnx, whose
newest release (0.1.0) requires ``transformers<4.58`` while this project pins transformers 5
(huggingface/optimum-onnx#114 is still open). So this module calls the two libraries that
backend itself stands on, with the same settings: ``torch.onnx.export`` writes the graph and
``onnxruntime.quantization.quantize_dynamic`` makes the int8 weights (optimum's
``AutoQuantizationConfig`` is a set of arguments to that same function). The graph is the
SentenceTransformer's own modules (BERT, mean pooling, normalisation), so nothing of the model
is re-implemented here; only the tokenizer runs outside it: the model's own tokenizer.json,
with the truncation and padding sentence-transformers applies.

The cache folder is shared by every worker process on the machine. Four prefork children that
start at once must not export four times nor read a half-written file: a build holds an
exclusive ``flock`` on ``<cache>/.build.lock``, looks again for the finished file once it has
the lock, writes to a temporary name in the same folder and renames it into place
(``os.replace`` is atomic within one file system). A reader never takes the lock: a file under
its final name is always complete. The file name carries a fingerprint of the model files, the
library versions and the quantisation, so a new model or library version builds a new file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

logger = logging.getLogger(__name__)

# Bump when the way a file is built changes, so old cache files are not reused.
BUILD_FORMAT = 1
OPSET = 17
# What ONNX Runtime's dynamic (IntegerOps) quantiser can quantise; optimum's default list.
ALL_DYNAMIC_OPERATORS = (
    "Conv",
    "MatMul",
    "Attention",
    "LSTM",
    "Gather",
    "Transpose",
    "EmbedLayerNormalization",
)
_SOURCE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "modules.json")


@dataclass(frozen=True)
class Quantisation:
    """Arguments to ``onnxruntime.quantization.quantize_dynamic`` (weights to int8, activations
    quantised on the fly per batch)."""

    name: str
    operators: tuple[str, ...]
    per_channel: bool
    weight_type: str = "QInt8"  # or "QUInt8" (optimum's avx2 preset)
    reduce_range: bool = False


# The presets the bench compares. MATMUL_PER_CHANNEL is what the ``onnx-int8`` backend uses: it
# keeps the embedding table (Gather) in float, which is where quantising every operator loses
# the most (see bench/bench_onnx.py and the README's benchmark section for the figures).
MATMUL_PER_CHANNEL = Quantisation("matmul-per-channel", ("MatMul",), per_channel=True)
QUANTISATIONS = {
    q.name: q
    for q in (
        MATMUL_PER_CHANNEL,
        Quantisation("matmul-per-tensor", ("MatMul",), per_channel=False),
        # optimum's AutoQuantizationConfig.avx512_vnni(is_static=False) and .avx512: identical
        # arguments for dynamic quantisation
        Quantisation("avx512_vnni", ALL_DYNAMIC_OPERATORS, per_channel=True),
        # optimum's AutoQuantizationConfig.avx2(is_static=False): unsigned weights
        Quantisation("avx2", ALL_DYNAMIC_OPERATORS, per_channel=True, weight_type="QUInt8"),
        Quantisation("all-per-tensor", ALL_DYNAMIC_OPERATORS, per_channel=False),
    )
}


class BuiltModel(NamedTuple):
    path: Path
    built: bool  # True when this call wrote the file, False when it was already there


def onnx_model_file(
    model_dir: Path, cache_dir: Path, quantisation: Quantisation | None
) -> BuiltModel:
    """The path of the ONNX file for ``model_dir`` (fp32, or int8 with ``quantisation``),
    exporting and quantising it into ``cache_dir`` first if it is not there yet."""
    cache_dir = Path(cache_dir)
    target = cache_dir / _file_name(model_dir, quantisation)
    if target.is_file():
        return BuiltModel(target, False)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".build.lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed, or the process dies
        if target.is_file():  # another process built it while we waited
            return BuiltModel(target, False)
        _remove_leftovers(cache_dir)
        fp32 = cache_dir / _file_name(model_dir, None)
        if not fp32.is_file():
            _write_atomically(fp32, lambda tmp: _export(model_dir, tmp))
            logger.info("exported %s to %s", model_dir, fp32)
        if quantisation is not None:
            _write_atomically(target, lambda tmp: _quantise(fp32, tmp, quantisation))
            logger.info("quantised %s to %s (%s)", fp32.name, target, quantisation.name)
    return BuiltModel(target, True)


def _file_name(model_dir: Path, quantisation: Quantisation | None) -> str:
    # Versions from the installed metadata: importing torch here would load it into every
    # worker that only runs ONNX Runtime.
    from importlib.metadata import version

    facts = {
        "format": BUILD_FORMAT,
        "opset": OPSET,
        "torch": version("torch"),
        "onnxruntime": version("onnxruntime"),
        "files": [
            [
                name,
                (Path(model_dir) / name).stat().st_size,
                (Path(model_dir) / name).stat().st_mtime_ns,
            ]
            for name in _SOURCE_FILES
        ],
        "quantisation": asdict(quantisation) if quantisation else None,
    }
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    kind = f"int8-{quantisation.name}" if quantisation else "fp32"
    return f"minilm-{digest}-{kind}.onnx"


def _remove_leftovers(cache_dir: Path) -> None:
    # Only a lock holder writes temporary files, so any found while we hold it belong to a
    # build that died half-way.
    for leftover in cache_dir.glob("*.onnx.tmp*"):
        leftover.unlink(missing_ok=True)


def _write_atomically(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; workers may run as another user
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _export(model_dir: Path, out: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    # The eager attention is written as MatMul/Softmax/MatMul, which ONNX Runtime fuses and
    # quantises; the SDPA kernel would export as one opaque block.
    model = SentenceTransformer(
        str(model_dir),
        device="cpu",
        local_files_only=True,
        model_kwargs={"attn_implementation": "eager"},
    ).eval()

    class SentenceEmbedding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            features = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            return self.model(features)["sentence_embedding"]

    example = model.preprocess(["an example sentence", "and a second, longer example sentence"])
    names = ["input_ids", "attention_mask", "token_type_ids"]
    # The tracer warns about every shape test it freezes (padding and pooling checks that hold
    # for any input the model is fed here: the fp32 file matches torch on the bench's chunks),
    # and about the TorchScript exporter being the older of torch's two; once per machine,
    # they would only bury the worker log.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            SentenceEmbedding(),
            tuple(example[n] for n in names),
            str(out),
            input_names=names,
            output_names=["sentence_embedding"],
            dynamic_axes={
                **{n: {0: "batch", 1: "sequence"} for n in names},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )


def _quantise(fp32: Path, out: Path, quantisation: Quantisation) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        fp32,
        out,
        op_types_to_quantize=list(quantisation.operators),
        per_channel=quantisation.per_channel,
        reduce_range=quantisation.reduce_range,
        weight_type=QuantType[quantisation.weight_type],
        # optimum's presets: symmetric weights, asymmetric activations
        extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
    )


class OnnxEncoder:
    """Unit vectors from an ONNX file made by ``onnx_model_file``.

    The ids are those sentence-transformers feeds the torch model: the same ``tokenizer.json``
    (the Rust ``tokenizers`` library, which transformers' fast tokenizer wraps), cut at the
    model's ``max_seq_length`` with [CLS] and [SEP] kept, padded with [PAD] to the longest
    text of the batch (tests/documents/pipeline/test_onnx_model.py compares them id for id).
    transformers itself is not used here because importing its tokenizer loads torch, which
    this backend does not otherwise need in the worker."""

    def __init__(
        self, model_path: Path, model_dir: Path, *, max_seq_length: int, num_threads: int | None
    ):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.max_seq_length = max_seq_length
        tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        # tokenizer.json ships with truncation and padding at 128; the model reads 256.
        tokenizer.enable_truncation(max_length=max_seq_length)
        pad_id = tokenizer.token_to_id("[PAD]")
        tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")  # to the batch's longest
        self.tokenizer = tokenizer

    def tokenize(self, texts: Sequence[str]) -> dict:
        import numpy as np

        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=True)
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }

    def encode(self, texts: Sequence[str], *, batch_size: int):
        import numpy as np

        # Longest first, as sentence-transformers' encode does, so a batch pads little.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        batches = []
        for start in range(0, len(order), batch_size):
            features = self.tokenize([texts[i] for i in order[start : start + batch_size]])
            feed = {name: features[name] for name in self.input_names}
            batches.append(self.session.run(None, feed)[0])
        out = np.empty_like(np.concatenate(batches)) if batches else np.empty((0, 0), np.float32)
        if batches:
            out[order] = np.concatenate(batches)
        return out
