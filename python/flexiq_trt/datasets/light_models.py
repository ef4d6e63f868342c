"""Full-size real architectures from the onnx wheel's ``light_*.onnx`` test graphs, made runnable.

Those graphs (ResNet50, DenseNet121, Inception v1/v2, ShuffleNet, SqueezeNet, VGG19, AlexNet,
ZFNet512; opset 9) create every weight with ``ConstantOfShape(0.02)``. Here each placeholder
becomes a seeded random initializer scaled for its role (He-normal conv/Gemm weights,
BatchNorm variance near 1, ...), so activations stay finite through deep nets, and the model is
converted to opset 13. The weights are random: use these for timing, memory and conversion
coverage, never for accuracy claims.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper, version_converter

from flexiq_trt.datasets.material import package_dir
from flexiq_trt.errors import CalibrationDataError

LIGHT_DIR = "backend/test/data/light"
TARGET_OPSET = 13
_PASS_THROUGH = {"Unsqueeze", "Reshape", "Squeeze", "Identity", "Cast"}


def available_light_models() -> list[str]:
    """Names such as ``resnet50`` for every ``light_<name>.onnx`` in the installed onnx wheel."""
    folder = package_dir("onnx") / LIGHT_DIR
    return sorted(p.stem.removeprefix("light_") for p in folder.glob("light_*.onnx"))


def light_model_source(name: str) -> Path:
    """Path of ``light_<name>.onnx`` inside the onnx wheel; names the available ones when absent."""
    path = package_dir("onnx") / LIGHT_DIR / f"light_{name}.onnx"
    if not path.is_file():
        raise CalibrationDataError(f"{path} not found; available light models: {available_light_models()}")
    return path


def _consumers(graph: onnx.GraphProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    uses: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            uses.setdefault(name, []).append((node, index))
    return uses


def _role(name: str, uses: dict[str, list[tuple[onnx.NodeProto, int]]]) -> tuple[str, int, onnx.NodeProto | None]:
    """(consumer op, input index, node) of a tensor, looking through shape-only ops."""
    for _ in range(8):
        found = uses.get(name, [])
        if not found:
            return "", -1, None
        node, index = found[0]
        if node.op_type not in _PASS_THROUGH:
            return node.op_type, index, node
        name = node.output[0]
    return "", -1, None


def _fan_in(shape: tuple[int, ...], op: str, node: onnx.NodeProto | None) -> int:
    if op == "Gemm" and node is not None and len(shape) == 2:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return shape[1] if trans_b else shape[0]
    return int(np.prod(shape[1:])) if len(shape) > 1 else max(1, int(np.prod(shape)))


def random_weight(shape: tuple[int, ...], op: str, index: int, node: onnx.NodeProto | None,
                  rng: np.random.Generator) -> np.ndarray:
    """A float32 tensor shaped for its role, so that a deep net keeps unit-scale activations."""
    if op in ("Conv", "Gemm", "MatMul") and index == 1:
        return rng.normal(0.0, np.sqrt(2.0 / _fan_in(shape, op, node)), shape).astype(np.float32)
    if op == "BatchNormalization" and index == 4:
        return rng.uniform(0.5, 1.5, shape).astype(np.float32)
    if (op == "BatchNormalization" and index == 1) or op == "Mul":
        return rng.uniform(0.8, 1.2, shape).astype(np.float32)
    return rng.normal(0.0, 0.05, shape).astype(np.float32)


def replace_placeholders(model: onnx.ModelProto, seed: int) -> int:
    """Swap every ``ConstantOfShape`` fed by a constant shape for a random initializer; returns the count."""
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    uses = _consumers(graph)
    kept, replaced = [], 0
    for node in graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in inits:
            kept.append(node)
            continue
        shape = tuple(int(d) for d in numpy_helper.to_array(inits[node.input[0]]))
        value = next((numpy_helper.to_array(a.t) for a in node.attribute if a.name == "value"), np.zeros(1, np.float32))
        if value.dtype != np.float32:
            kept.append(node)
            continue
        op, index, consumer = _role(node.output[0], uses)
        rng = np.random.default_rng([seed, zlib.crc32(node.output[0].encode())])
        graph.initializer.append(numpy_helper.from_array(random_weight(shape, op, index, consumer, rng), node.output[0]))
        replaced += 1
    del graph.node[:]
    graph.node.extend(kept)
    _drop_unused_initializers(graph)
    return replaced


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """Remove initializers no node reads (the shape constants, stray blobs) and unlist them as inputs."""
    used = {name for node in graph.node for name in node.input} | {value.name for value in graph.output}
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    inits = {init.name for init in keep}
    inputs = [value for value in graph.input if value.name not in inits and value.name in used]
    del graph.input[:]
    graph.input.extend(inputs)


def materialize_light_model(name: str, out_path: str | Path, seed: int = 0) -> Path:
    """Write ``light_<name>`` with seeded random weights at opset 13; returns ``out_path``."""
    model = onnx.load(str(light_model_source(name)))
    if replace_placeholders(model, seed) == 0:
        raise CalibrationDataError(f"light_{name}.onnx: no ConstantOfShape weight placeholders found")
    model.ir_version = max(model.ir_version, 7)  # IR >= 4: initializers need not be graph inputs
    model = version_converter.convert_version(model, TARGET_OPSET)
    onnx.checker.check_model(model)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out
