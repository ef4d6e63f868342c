"""`convert` with offset inputs (docs/design.md §2.3): unsigned codes after HardSwish, same float model, lower error.

The model is x -> Identity -> HardSwish -> Conv 1x1 (64 -> 48) -> Relu -> Conv 1x1 (48 -> 32). The first
layer's input is signed but bounded below (-0.375), so by default the conversion shifts it and the
layer reads unsigned codes; `offset_inputs=False` keeps the signed codes. Both conversions run the
pipeline's own artifact check (simulation against the NumPy reference, bit for bit).
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from _utils import models as M
from _utils.configs import NO_BLOCK_ROUNDING
from onnx import helper

import flexiq_trt
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.graph_passes.graph_index import attr
from flexiq_trt.plugin_spec import CONV_OP, RUNTIME_INPUT
from flexiq_trt.quantization.config import QuantConfig


def _model() -> onnx.ModelProto:
    rng = np.random.default_rng(11)
    nodes = [helper.make_node("Identity", ["x"], ["i"], name="id"),
             helper.make_node("HardSwish", ["i"], ["h"], name="hs"),
             helper.make_node("Conv", ["h", "w1", "b1"], ["c1"], name="conv1"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["y"], name="conv2")]
    inits = [("w1", (rng.standard_normal((48, 64, 1, 1)) * 0.2).astype(np.float32)),
             ("b1", (rng.standard_normal(48) * 0.1).astype(np.float32)),
             ("w2", (rng.standard_normal((32, 48, 1, 1)) * 0.2).astype(np.float32)),
             ("b2", (rng.standard_normal(32) * 0.1).astype(np.float32))]
    return M.make_model(nodes, [M.vinfo("x", ["N", 64, 6, 6])], [M.vinfo("y", None)], inits, opset=14)


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("offset")
    onnx.save(_model(), tmp / "hs.onnx")
    x = (np.random.default_rng(0).standard_normal((48, 64, 6, 6)) * 2).astype(np.float32)
    np.savez(tmp / "calib.npz", x=x)
    out = {}
    for flag in (True, False):
        out[flag] = flexiq_trt.convert(tmp / "hs.onnx", calib=str(tmp / "calib.npz"), output_dir=tmp / f"o{flag}",
                                       config=ConvertConfig(selector="greedy", ort_baseline=False),
                                       quant=replace(QuantConfig(), offset_inputs=flag), refine=NO_BLOCK_ROUNDING)
    return tmp, out, x


def _signed(result) -> list[int]:
    plug = onnx.load(str(result.files["flexiq_onnx"]))
    return [int(attr(n, "act_signed")) for n in plug.graph.node if n.op_type == CONV_OP]


def test_offset_makes_the_bounded_layer_unsigned(both):
    _, out, _ = both
    assert _signed(out[True]) == [0, 0] and _signed(out[False]) == [1, 0]
    rep = json.loads((out[True].files["report_json"]).read_text())
    assert rep["layers"]["input_offsets"] == [{"name": "conv1", "lower_bound": -0.375}]
    assert rep["quantization"]["offset_inputs"] is True
    assert "- offset inputs: 1 layer(s) read a bounded signed input shifted by +0.375" in \
        out[True].files["report_md"].read_text()
    assert "offset inputs" not in out[False].files["report_md"].read_text()
    plug = onnx.load(str(out[True].files["flexiq_onnx"]))
    ops = [n.op_type for n in plug.graph.node]
    assert ops.index("Relu") < ops.index(CONV_OP)  # the shift runs before the first plugin node


def test_artifacts_pass_the_bit_exact_check(both):
    _, out, _ = both
    for res in out.values():
        assert res.report["artifact_check"]["compared_with"]  # the check ran (it raises on a mismatch)


def test_offset_lowers_the_error_at_every_rung(both):
    tmp, out, x = both
    ref = ort.InferenceSession(str(tmp / "hs.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x[:8]})[0]
    errs = {}
    for flag, res in out.items():
        sess = ort.InferenceSession(str(res.files["sim_onnx"]), providers=["CPUExecutionProvider"])
        errs[flag] = [float(np.linalg.norm(sess.run(None, {"x": x[:8], RUNTIME_INPUT: res.table.vector(r)})[0] - ref)
                            / np.linalg.norm(ref)) for r in (0.0, 1.0)]
    assert errs[True][0] < errs[False][0] and errs[True][1] < errs[False][1], errs
