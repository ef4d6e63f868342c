"""load_model: clear errors naming the file, quantized models rejected, old opsets upgraded, external data."""

from __future__ import annotations

import onnx
import pytest
from _utils import models as M

from flexiq_trt.errors import ModelError, UnsupportedModelError
from flexiq_trt.intake import find_layers, load_model, prepare_model
from flexiq_trt.plugin_spec import Activation


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="nope.onnx"):
        load_model(tmp_path / "nope.onnx")


def test_not_onnx(tmp_path):
    p = tmp_path / "text.onnx"
    p.write_text("this is not a protobuf, just some words\n" * 20)
    with pytest.raises(ModelError, match="text.onnx"):
        load_model(p)


def test_truncated(tmp_path):
    data = M.conv_bn_relu().SerializeToString()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cut.onnx"):
        load_model(p)


def test_invalid_model(tmp_path):
    model = M.conv_bn_relu()
    model.graph.node[0].input[1] = "no_such_tensor"
    p = tmp_path / "bad.onnx"
    onnx.save(model, p)
    with pytest.raises(ModelError, match="bad.onnx.*invalid"):
        load_model(p)


def test_quantized_model_rejected_naming_node(tmp_path):
    p = tmp_path / "q.onnx"
    onnx.save(M.conv_integer_model(), p)
    with pytest.raises(UnsupportedModelError, match="qconv.*ConvInteger"):
        load_model(p)


def test_opset8_converted_up(tmp_path):
    p = tmp_path / "old.onnx"
    onnx.save(M.old_opset_conv(), p)
    model = load_model(p)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 13
    (layer,), _ = find_layers(prepare_model(model), 32)
    assert layer.activation == Activation.CLIP
    assert (layer.activation_alpha, layer.activation_beta) == (0.0, 6.0)


def test_ir3_initializers_no_longer_graph_inputs(tmp_path):
    """IR 3 lists every initializer as an input; the artifacts add initializers that are not (checker error)."""
    p = tmp_path / "ir3.onnx"
    onnx.save(M.ir3_gemm(), p)
    model = load_model(p)
    assert model.ir_version >= 4
    assert [i.name for i in model.graph.input] == ["x"]
    assert {i.name for i in model.graph.initializer} == {"w", "b"}
    onnx.checker.check_model(model)
    (layer,), _ = find_layers(prepare_model(model), 32)
    assert layer.op_type == "Gemm"


def test_external_data(tmp_path):
    p = tmp_path / "ext.onnx"
    onnx.save(M.conv_bn_relu(), p, save_as_external_data=True, all_tensors_to_one_file=True, location="ext.bin",
              size_threshold=0)
    assert (tmp_path / "ext.bin").stat().st_size > 0
    model = load_model(p)
    layers, _ = find_layers(prepare_model(model), 32)
    assert len(layers) == 1 and layers[0].weight.shape == (32, 64, 3, 3)
