"""G per layer (the default, docs/design.md §2.2): the rule, and a conversion whose layers get G = 32, 32, 64.

The model chains convolutions with C_in 40, 96 and 128, so the auto rule gives 32 (below 64), 32 (64
would pad 96 to 128) and 64. The conversion runs the pipeline's own stages; the test then checks the
plugin nodes, the ratio table, and the simulation against the NumPy reference at every layer.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from _utils import models as M
from _utils.ort_run import session, tensor_values
from onnx import helper

from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.conversion import ConversionState, ConvertConfig
from flexiq_trt.errors import ConfigError
from flexiq_trt.graph_passes.graph_index import attr
from flexiq_trt.graph_passes.simulate_layers import acc_output_name, write_simulation_model
from flexiq_trt.pipeline import convert as pipe
from flexiq_trt.plugin_spec import AUTO_GROUP_SIZE, PLUGIN_OPS, RUNTIME_INPUT, auto_group_size
from flexiq_trt.quantization import reference
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.ratios import PER_LAYER, RatioTable

WIDTHS = (40, 96, 128)
EXPECTED_G = [32, 32, 64]


@pytest.mark.parametrize(("c_in", "g"), [(64, 64), (96, 32), (160, 32), (320, 64), (384, 64), (576, 64), (40, 32),
                                         (32, 32), (128, 64), (192, 64), (63, 32), (992, 32), (1000, 64), (1024, 64)])
def test_auto_rule(c_in, g):
    assert auto_group_size(c_in) == g
    assert QuantConfig().group_size_for(c_in) == g  # auto is the default


def test_fixed_settings_and_bad_values():
    assert QuantConfig().group_size == AUTO_GROUP_SIZE
    assert QuantConfig(group_size=32).group_size_for(128) == 32
    assert QuantConfig(group_size=64).group_size_for(96) == 64
    with pytest.raises(ConfigError, match="group_size.*16"):
        QuantConfig(group_size=16)


def chain_model(hw: int = 6) -> onnx.ModelProto:
    """Conv 3x3 (40 -> 96) -> Relu -> Conv 1x1 (96 -> 128) -> Relu -> Conv 3x3 (128 -> 16)."""
    rng = np.random.default_rng(5)
    outs = (*WIDTHS[1:], 16)
    inits, nodes, prev = [], [], "x"
    for i, (c, n) in enumerate(zip(WIDTHS, outs, strict=True)):
        k = 1 if i == 1 else 3
        inits += [(f"w{i}", (rng.standard_normal((n, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)),
                  (f"b{i}", (0.1 * rng.standard_normal(n)).astype(np.float32))]
        out = f"c{i}" if i < 2 else "y"
        nodes.append(helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [out], name=f"conv{i}",
                                      pads=[k // 2] * 4))
        if i < 2:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"], name=f"relu{i}"))
            prev = f"r{i}"
    return M.make_model(nodes, [M.vinfo("x", ["N", WIDTHS[0], hw, hw])], [M.vinfo("y", None)], inits)




@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The pipeline's stages up to the written artifacts, with the default (auto) group size."""
    from flexiq_trt.select.config import SearchConfig

    tmp = tmp_path_factory.mktemp("gauto")
    onnx.save(chain_model(), tmp / "chain.onnx")
    x = np.random.default_rng(0).normal(size=(32, WIDTHS[0], 6, 6)).astype(np.float32)
    np.savez(tmp / "calib.npz", x=x)
    state = ConversionState(tmp / "chain.onnx", CalibConfig(data=str(tmp / "calib.npz")), QuantConfig(),
                            ConvertConfig(selector="greedy", ort_baseline=False, output_dir=str(tmp / "out")))
    out = Path(tempfile.mkdtemp(dir=tmp))
    pipe.intake(state)
    pipe.split_data(state)
    pipe.calibrate_and_quantize(state)
    pipe.select(state, SearchConfig())
    pipe.rewrite(state, out)
    return state, x


def test_layers_get_their_own_group_size(converted):
    state, _ = converted
    assert [el.in_channels for el in state.eligible] == list(WIDTHS)
    assert [rec.final.group_size for rec in state.selected] == EXPECTED_G
    assert [rec.final.padded_channels for rec in state.selected] == [64, 96, 128]
    plug = onnx.load(str(state.files["flexiq_onnx"]))
    nodes = [n for n in plug.graph.node if n.op_type in PLUGIN_OPS]
    assert [attr(n, "group_size") for n in nodes] == EXPECTED_G
    sim_meta = {p.key: p.value for p in onnx.load(str(state.files["sim_onnx"])).metadata_props}
    assert sim_meta  # the simulation carries the table too


def test_ratio_table_is_per_layer_and_round_trips(converted):
    state, _ = converted
    table = state.table
    assert table.group_size == PER_LAYER and table.group_size_label == "per layer (32/64)"
    assert table.group_sizes().tolist() == EXPECTED_G
    assert table.group_size_counts() == {"32": 2, "64": 1}
    assert table.vector(1.0).tolist() == [64, 96, 128]
    written = json.loads(Path(state.files["sidecar"]).read_text())
    assert [le["group_size"] for le in written["layers"]] == EXPECTED_G and written["group_size"] == 0
    back = RatioTable.from_json(Path(state.files["sidecar"]).read_text())
    prev = np.zeros(table.num_layers)
    for r in np.linspace(0, 1, 21):
        v = table.vector(float(r))
        assert np.array_equal(back.vector(float(r)), v)
        assert np.all(v % table.group_sizes() == 0) and np.all(v >= prev)
        assert table.achieved_ratio(v) >= r - 1e-9
        prev = v


def test_simulation_matches_reference_per_layer(converted):
    """Every layer's int32 accumulator equals quantization.reference's, at ratios across the ladder."""
    state, x = converted
    pairs = [(rec.eligible, rec.final) for rec in state.selected]
    debug = write_simulation_model(state.prepared, pairs, {}, debug_outputs=True)
    shipped = onnx.load(str(state.files["sim_onnx"]))
    names = [el.input_name for el, _ in pairs] + [acc_output_name(el.output_name) for el, _ in pairs] \
        + [el.output_name for el, _ in pairs]
    feeds = {"x": x[:2]}
    ship = session(shipped)
    seen_4bit = set()
    for r in (0.0, 0.2, 0.45, 0.7, 1.0):
        vec = state.table.vector(r)
        vals = tensor_values(debug, {**feeds, RUNTIME_INPUT: vec}, names)
        for i, (el, ql) in enumerate(pairs):
            acc, y = reference.layer_forward(ql, vals[el.input_name], int(vec[i]))
            np.testing.assert_array_equal(vals[acc_output_name(el.output_name)], acc,
                                          err_msg=f"{el.name} (G={ql.group_size}) at ratio {r}")
            np.testing.assert_allclose(vals[el.output_name], y, rtol=1e-6,
                                       atol=1e-6 * max(1.0, float(np.abs(y).max())))
            if vec[i] > 0:
                seen_4bit.add(ql.group_size)
        got = ship.run(None, {**feeds, RUNTIME_INPUT: vec})[0]
        assert np.array_equal(got, vals[pairs[-1][0].output_name]), f"shipped artifact differs at ratio {r}"
    assert seen_4bit == {32, 64}


def test_ratio_and_inspect_commands_show_the_mix(converted, capsys):
    from flexiq_trt.cli.main import main

    state, _ = converted
    assert main(["ratio", str(state.files["sidecar"]), "1.0"]) == 0
    out = capsys.readouterr().out
    assert "G=per layer (32/64)" in out and "[64, 96, 128]" in out
    onnx.save(chain_model(), Path(state.files["sidecar"]).with_name("plain.onnx"))
    assert main(["inspect", str(Path(state.files["sidecar"]).with_name("plain.onnx"))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "group size 32/64 (auto, per layer)" in lines[0]
    assert [int(line.split()[3]) for line in lines[2:5]] == EXPECTED_G  # the G column
    assert main(["inspect", "--group-size", "64", str(Path(state.files["sidecar"]).with_name("plain.onnx"))]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 eligible layer(s), 1 kept; group size 64") and "C_in 40 is below one channel group (64)" in out
