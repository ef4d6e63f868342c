"""Seed corpus of the plugin-field fuzz target from real converted models.

Each FlexiQ node of a `<stem>.flexiq.onnx` becomes one input in the byte format that
tests/cpp/fuzz/flexiqFuzzInput.h describes, with the attribute -> PluginField mapping of the
TensorRT-RTX ONNX parser (docs/design.md §6): INT -> kINT32, FLOAT -> kFLOAT32, INTS -> kINT32 array,
TENSOR int8/int32/float32 -> kINT8/kINT32/kFLOAT32 (flattened). So every seed is a collection that
createPlugin really receives, and the fuzzer starts from accepted inputs.

Usage: python tests/unit/hardening/fuzz_corpus.py MODEL.flexiq.onnx... -o CORPUS_DIR [--max-bytes N]
"""

from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from flexiq_trt.plugin_spec import CONV_OP, FIELDS, GEMM_OP

FIELD_NAMES = [f.name for f in FIELDS]  # the order of kFIELDS in plugins/common/flexiqFields.h
K_INT8, K_INT32, K_FLOAT32 = 3, 5, 1  # nvinfer1::PluginFieldType values
_TENSOR_TYPES = {np.dtype(np.int8): K_INT8, np.dtype(np.int32): K_INT32, np.dtype(np.float32): K_FLOAT32}


def _field(name: str, type_code: int, data: bytes, length: int) -> bytes:
    return struct.pack("<BBiB", FIELD_NAMES.index(name), type_code, length, 1) + data


def encode_node(node: onnx.NodeProto) -> bytes:
    """The fuzz input for one FlexiQConv/FlexiQGemm node."""
    out = bytearray([1 if node.op_type == CONV_OP else 0])
    for a in node.attribute:
        if a.name not in FIELD_NAMES:
            continue  # plugin_version / plugin_namespace select the creator; they are not fields
        if a.type == onnx.AttributeProto.INT:
            out += _field(a.name, K_INT32, struct.pack("<i", a.i), 1)
        elif a.type == onnx.AttributeProto.FLOAT:
            out += _field(a.name, K_FLOAT32, struct.pack("<f", a.f), 1)
        elif a.type == onnx.AttributeProto.INTS:
            out += _field(a.name, K_INT32, np.asarray(a.ints, "<i4").tobytes(), len(a.ints))
        elif a.type == onnx.AttributeProto.TENSOR:
            arr = numpy_helper.to_array(a.t)
            code = _TENSOR_TYPES.get(arr.dtype)
            if code is None:
                raise ValueError(f"{node.name}: attribute {a.name!r} has dtype {arr.dtype}, not a plugin field type")
            out += _field(a.name, code, np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes(),
                          arr.size)
        else:
            raise ValueError(f"{node.name}: attribute {a.name!r} has ONNX type {a.type}, not a plugin field type")
    return bytes(out)


def write_corpus(models: list[Path], out_dir: Path, max_bytes: int = 1 << 18) -> list[Path]:
    """One file per plugin node of each model, skipping nodes larger than `max_bytes` (fuzzing speed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for model in models:
        graph = onnx.load(str(model)).graph
        for i, node in enumerate(n for n in graph.node if n.op_type in (CONV_OP, GEMM_OP)):
            data = encode_node(node)
            if len(data) > max_bytes:
                continue
            path = out_dir / f"{Path(model).name.split('.')[0]}_{i:03d}_{node.op_type}.bin"
            path.write_bytes(data)
            written.append(path)
    return written


def main() -> None:
    """CLI: write the corpus and print how many seeds."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("-o", "--out", type=Path, required=True)
    p.add_argument("--max-bytes", type=int, default=1 << 18)
    args = p.parse_args()
    print(f"{len(write_corpus(args.models, args.out, args.max_bytes))} seeds -> {args.out}")


if __name__ == "__main__":
    main()
