"""FlexiQ ONNX -> TensorRT-RTX parser -> engines built ahead of time (no GPU) for SM86 and SM89."""

from __future__ import annotations

import contextlib

import pytest
from _flexiq_models import conv_gemm_model, gemm_model, int8_edge_model, save

from flexiq_trt.errors import ConfigError, PluginFieldError
from flexiq_trt.plugin_spec import RUNTIME_INPUT
from flexiq_trt.runtime.engine_builder import BuildOptions, build_engine

pytestmark = [pytest.mark.plugin, pytest.mark.rtx]


@contextlib.contextmanager
def parsed(rtx, path):
    """The parsed network; logger, builder, network and parser are released in reverse order after use."""
    tm = rtx.module
    logger = tm.Logger(tm.Logger.ERROR)
    builder = tm.Builder(logger)
    network = builder.create_network(0)
    parser = tm.OnnxParser(network, logger)
    try:
        assert parser.parse_from_file(str(path)), [parser.get_error(i).desc() for i in range(parser.num_errors)]
        yield network
    finally:
        del parser
        del network
        del builder
        del logger


def test_parser_creates_plugin_layers_with_output_shapes(rtx, tmp_path) -> None:
    with parsed(rtx, save(conv_gemm_model(hw=9), tmp_path / "m.onnx")) as network:
        plugin_shapes = [tuple(network.get_layer(i).get_output(0).shape) for i in range(network.num_layers)
                         if network.get_layer(i).type == rtx.module.LayerType.PLUGIN_V3]
        out_shape = tuple(network.get_output(0).shape)
        names = [network.get_input(i).name for i in range(network.num_inputs)]
        l_shape = tuple(network.get_input(1).shape)
    assert len(plugin_shapes) == 2
    assert plugin_shapes[0] == (-1, 16, 9, 9)  # 3x3, pad 1, stride 1 keeps H, W; batch stays dynamic
    assert out_shape == (-1, 10)
    assert names == ["x", RUNTIME_INPUT]
    assert l_shape == (2,)


def test_conv_output_extent_with_stride_and_dilation(rtx, tmp_path) -> None:
    from onnx import helper

    rep = {"strides": helper.make_attribute("strides", [2, 3]), "dilations": helper.make_attribute("dilations", [2, 1]),
           "pads": helper.make_attribute("pads", [0, 1, 2, 0])}
    model = conv_gemm_model(conv_replace=rep, hw=11)
    # P = floor((11 + 0 + 2 - 2*2 - 1) / 2) + 1 = 5; Q = floor((11 + 1 + 0 - 1*2 - 1) / 3) + 1 = 4
    with parsed(rtx, save(model, tmp_path / "s.onnx")) as network:
        shapes = [tuple(network.get_layer(i).get_output(0).shape) for i in range(network.num_layers)
                  if network.get_layer(i).type == rtx.module.LayerType.PLUGIN_V3]
    assert shapes[0] == (-1, 16, 5, 4)


@pytest.mark.parametrize("caps", [(86,), (89,), (86, 89)])
def test_builds_engine_ahead_of_time(rtx, tmp_path, caps) -> None:
    onnx_path = save(conv_gemm_model(), tmp_path / "m.onnx")
    result = build_engine(onnx_path, tmp_path / "m.engine", trt=rtx, compute_capabilities=caps,
                          min_batch=1, opt_batch=4, max_batch=16)
    data = result.path.read_bytes()
    assert result.size_bytes == len(data) > 10_000
    assert result.backend == "tensorrt_rtx" and result.compute_capabilities == caps and result.num_layers == 2
    # The serialized plugin fields (getFieldsToSerialize) are in the plan, under their creator names.
    for token in (b"FlexiQConv", b"FlexiQGemm", b"weight_int8", b"permutation"):
        assert token in data


def test_two_targets_make_a_different_plan_than_either_one(rtx, tmp_path) -> None:
    # Every layer of this network is a plugin, so a second target adds only a few header bytes
    # (measured: 0-8 bytes, depending on the plugin library); compare the plans themselves.
    onnx_path = save(conv_gemm_model(), tmp_path / "m.onnx")
    one = build_engine(onnx_path, tmp_path / "a.engine", trt=rtx, compute_capabilities=(86,))
    other = build_engine(onnx_path, tmp_path / "c.engine", trt=rtx, compute_capabilities=(89,))
    two = build_engine(onnx_path, tmp_path / "b.engine", trt=rtx, compute_capabilities=(86, 89))
    assert two.compute_capabilities == (86, 89)
    assert two.size_bytes >= max(one.size_bytes, other.size_bytes)
    plans = {r.path.read_bytes() for r in (one, other, two)}
    assert len(plans) == 3


def test_fp16_model_builds(rtx, tmp_path) -> None:
    onnx_path = save(conv_gemm_model(fp16=True), tmp_path / "h.onnx")
    result = build_engine(onnx_path, tmp_path / "h.engine", trt=rtx, fp16=True)
    assert result.size_bytes > 10_000


def test_fp16_request_on_fp32_model_is_a_clear_error(rtx, tmp_path) -> None:
    onnx_path = save(conv_gemm_model(), tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="strongly typed"):
        build_engine(onnx_path, tmp_path / "m.engine", trt=rtx, fp16=True)


def test_rank3_gemm_builds_with_dynamic_batch(rtx, tmp_path) -> None:
    onnx_path = save(gemm_model(rank=3), tmp_path / "g.onnx")
    result = build_engine(onnx_path, tmp_path / "g.engine", trt=rtx, max_batch=32, opt_batch=8)
    assert result.num_layers == 1 and result.size_bytes > 5_000


@pytest.mark.parametrize("consumer_signed", [1, 0], ids=["s8", "u8"])
def test_int8_edge_between_two_layers_builds(rtx, tmp_path, consumer_signed) -> None:
    # P writes INT8 codes (output_int8), C reads them (input_int8): the plugin-to-plugin tensor is INT8.
    path = save(int8_edge_model(consumer_signed), tmp_path / "e.onnx")
    with parsed(rtx, path) as network:
        plugins = [network.get_layer(i) for i in range(network.num_layers)
                   if network.get_layer(i).type == rtx.module.LayerType.PLUGIN_V3]
        edge_type = plugins[0].get_output(0).dtype
        out_type = plugins[1].get_output(0).dtype
    assert edge_type == rtx.module.DataType.INT8 and out_type == rtx.module.DataType.FLOAT
    result = build_engine(path, tmp_path / "e.engine", trt=rtx, compute_capabilities=(86,), max_batch=4, opt_batch=2)
    assert result.num_layers == 2 and result.size_bytes > 5_000
    assert b"output_int8" in result.path.read_bytes()


def test_int8_edge_into_a_float_input_is_a_clear_error(rtx, tmp_path) -> None:
    path = save(int8_edge_model(consumer_input_int8=0), tmp_path / "bad.onnx")
    with pytest.raises(Exception, match=r"input x is INT8.*'input_int8' = 0"):
        build_engine(path, tmp_path / "bad.engine", trt=rtx, compute_capabilities=(86,))


def test_layer_index_outside_runtime_vector_fails_at_build(rtx, tmp_path) -> None:
    from onnx import helper

    # L = 1 but layer_index = 3: caught when TensorRT configures the plugin.
    onnx_path = save(gemm_model(replace={"layer_index": helper.make_attribute("layer_index", 3)}), tmp_path / "l.onnx")
    with pytest.raises(PluginFieldError, match=r"'layer_index' = 3 is outside flexiq_max_4bit_ch of length 1"):
        build_engine(onnx_path, tmp_path / "l.engine", trt=rtx)


@pytest.mark.parametrize("caps, match", [((90,), "cannot build for SM"), ((75,), "sm_80 or newer")])
def test_unsupported_targets(rtx, tmp_path, caps, match) -> None:
    onnx_path = save(gemm_model(), tmp_path / "g.onnx")
    with pytest.raises(ConfigError, match=match):
        build_engine(onnx_path, tmp_path / "g.engine", trt=rtx, compute_capabilities=caps)


def test_build_options_validation() -> None:
    with pytest.raises(ConfigError, match="min <= opt <= max"):
        BuildOptions(min_batch=4, opt_batch=2, max_batch=8)
    with pytest.raises(ConfigError, match="compute_capabilities is empty"):
        BuildOptions(compute_capabilities=())
    with pytest.raises(ConfigError, match="unknown build option"):
        build_engine(__file__, "/nonexistent/x.engine", bogus=1)
