"""Read an ONNX model from disk with errors that name the file, and reject what cannot be converted."""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import helper, version_converter

from flexiq_trt.errors import ModelError, UnsupportedModelError

log = logging.getLogger("flexiq_trt.intake")

MIN_OPSET = 11
TARGET_OPSET = 13
SEPARATE_INITIALIZERS_IR = 4  # from this IR version on, an initializer need not be listed as a graph input
QUANTIZED_OPS = frozenset({
    "ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul", "QuantizeLinear", "DequantizeLinear",
    "DynamicQuantizeLinear", "QLinearAdd", "QLinearMul", "QLinearGlobalAveragePool", "QLinearConcat",
    "QLinearSigmoid", "QLinearLeakyRelu", "QLinearAveragePool", "QLinearSoftmax", "QGemm", "QAttention",
    "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "MatMulNBits",
})


def load_model(path: str | Path) -> onnx.ModelProto:
    """Load, check and (for opset < 11) upgrade a float ONNX model; external data is supported."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        model = onnx.load(str(path), load_external_data=True)
    except DecodeError as e:
        raise ModelError(f"{path}: not a readable ONNX model (truncated or not ONNX): {e}") from e
    except (OSError, ValueError, RuntimeError) as e:
        raise ModelError(f"{path}: cannot load ONNX model: {e}") from e
    if not model.graph.node and not model.graph.output:
        raise ModelError(f"{path}: not an ONNX model (the file parsed to an empty graph)")
    check_model(model, str(path))
    reject_quantized(model, str(path))
    return separate_initializers(upgrade_opset(model, str(path)), str(path))


def separate_initializers(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    """An IR < 4 model (ONNX-zoo exports, opset 8) with its initializers no longer listed as graph inputs.

    IR 3 requires every initializer to be a graph input as well, and the artifacts add initializers
    (the weight codes) that are not, so they would fail the checker. The model's weights are
    constants to every stage here (and to TensorRT), so the listing is dropped and the IR version
    raised to the one the opset needs (at least 4); the computation is unchanged.
    """
    if model.ir_version >= SEPARATE_INITIALIZERS_IR:
        return model
    out = onnx.ModelProto()
    out.CopyFrom(model)
    names = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in names]
    del out.graph.input[:]
    out.graph.input.extend(inputs)
    out.ir_version = max(SEPARATE_INITIALIZERS_IR, helper.find_min_ir_version_for(list(out.opset_import), True))
    log.info("%s: IR version %d -> %d, %d initializers no longer listed as graph inputs", where, model.ir_version,
             out.ir_version, len(model.graph.input) - len(inputs))
    return out


def check_model(model: onnx.ModelProto, where: str) -> None:
    """onnx.checker, with the error naming the file."""
    try:
        if model.ByteSize() < 2**31 - 1:
            onnx.checker.check_model(model)
        elif Path(where).is_file():
            onnx.checker.check_model(where)  # past 2 GiB only the file-path checker works
    except onnx.checker.ValidationError as e:
        raise ModelError(f"{where}: invalid ONNX model: {str(e).splitlines()[0]}") from e


def reject_quantized(model: onnx.ModelProto, where: str) -> None:
    """Already-quantized models are refused: FlexiQ needs the float weights and activations."""
    for node in model.graph.node:
        if node.op_type in QUANTIZED_OPS:
            raise UnsupportedModelError(
                f"{where}: model is already quantized (node {node.name or node.output[0]!r} is "
                f"{node.op_type}); give flexiq_trt the float model")


def default_opset(model: onnx.ModelProto) -> int:
    """The default-domain opset version (0 when absent)."""
    return max((int(i.version) for i in model.opset_import if i.domain in ("", "ai.onnx")), default=0)


def upgrade_opset(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    """Convert models below opset 11 to opset 13 (the passes assume input-form Clip/Pad)."""
    version = default_opset(model)
    if version >= MIN_OPSET:
        return model
    try:
        converted = version_converter.convert_version(model, TARGET_OPSET)
    except Exception as e:  # the converter raises bare RuntimeError/IndexError subclasses
        raise UnsupportedModelError(f"{where}: cannot convert opset {version} to {TARGET_OPSET}: {e}") from e
    log.info("%s: converted opset %d -> %d", where, version, TARGET_OPSET)
    return converted
