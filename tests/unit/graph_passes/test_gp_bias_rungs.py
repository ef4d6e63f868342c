"""The simulation's per-rung bias (docs/design.md §2.8) equals the NumPy reference bit for bit.

A non-trivial table (every row different) at every n4, out-of-range values included, in both
simulation variants; with no activation the float output is `float(acc) * out_scale + bias[k]` in
the same two float32 roundings on both sides, so outputs must be identical, not merely close.
"""

from __future__ import annotations

import numpy as np
import pytest
from _gp_helpers import eligible_of, random_input, random_quantized, session
from _utils import models as M
from test_gp_simulate import LAYER_KINDS, input_shape, n4_values

from flexiq_trt.graph_passes.simulate_layers import acc_output_name, write_simulation_model
from flexiq_trt.plugin_spec import RUNTIME_INPUT, ShiftMode, mask_input_name
from flexiq_trt.quantization import reference


def with_rungs(ql, seed: int):
    """`ql` with a random per-group bias shift of the size of a few output steps (every row distinct)."""
    rng = np.random.default_rng(seed)
    ql.group_bias_shift = rng.normal(0, 0.3, size=(ql.group_count, ql.out_channels))
    ql.validate()
    return ql


@pytest.mark.parametrize("kind", ["conv3x3_s2_pad_dil", "matmul3d", "gemm2d_transb"])
@pytest.mark.parametrize("shift_mode", [ShiftMode.DYNAMIC, ShiftMode.STATIC], ids=["dyn", "static"])
@pytest.mark.parametrize("float_exact", [False, True], ids=["integer", "float_exact"])
def test_bias_rung_matches_reference_at_every_n4(kind, shift_mode, float_exact):
    prepared, (el,) = eligible_of(LAYER_KINDS[kind](), 32)
    ql = with_rungs(random_quantized(el, 0, 32, True, shift_mode, 5), 5)
    table = ql.bias_table()
    assert len({row.tobytes() for row in table}) == table.shape[0]
    sim = write_simulation_model(prepared, [(el, ql)], {}, debug_outputs=True, float_exact=float_exact)
    sess, out = session(sim), sim.graph.output[0].name
    x = random_input(input_shape(prepared), el.is_conv, True, 1)
    outputs = set()
    for n4 in sorted(set(n4_values(ql.padded_channels, 32)) | set(range(0, ql.padded_channels + 1, 32))):
        acc, y = sess.run([acc_output_name(el.output_name), out], {"x": x, RUNTIME_INPUT: np.array([n4], np.int32)})
        ref_acc, ref_y = reference.layer_forward(ql, x, n4)
        np.testing.assert_array_equal(acc, ref_acc, err_msg=f"n4={n4}")
        np.testing.assert_array_equal(y, ref_y, err_msg=f"output at n4={n4}")
        outputs.add(y.tobytes())
    assert len(outputs) >= ql.group_count + 1


def test_bias_rung_moves_the_output_by_the_table_difference():
    """Same accumulator, two tables: the outputs differ by exactly the rung's bias row difference."""
    prepared, (el,) = eligible_of(LAYER_KINDS["matmul3d"](), 32)
    ql = with_rungs(random_quantized(el, 0, 32, True, ShiftMode.DYNAMIC, 2), 2)
    flat = random_quantized(el, 0, 32, True, ShiftMode.DYNAMIC, 2)
    x = random_input(input_shape(prepared), False, True, 4)
    n4 = 64
    runs = [session(write_simulation_model(prepared, [(el, q)], {})).run(None, {"x": x, RUNTIME_INPUT: np.array(
        [n4], np.int32)})[0] for q in (ql, flat)]
    k = n4 // 32
    np.testing.assert_allclose(runs[0] - runs[1], np.broadcast_to(ql.bias_table()[k] - ql.bias, runs[0].shape),
                               rtol=0, atol=1e-5)


def test_mask_mode_corrects_exactly_the_4bit_groups():
    """Mask mode (the search's evaluator, any subset of groups): bias minus the shifts of the masked groups.

    A prefix mask gives the prefix reference's output (row k) up to float32 rounding of the sum; any
    other mask equals the reference of the layer regrouped so that the masked groups come first.
    """
    from test_gp_simulate import _groups_first

    prepared, (el,) = eligible_of(LAYER_KINDS["conv3x3_s2_pad_dil"](), 32)
    ql = with_rungs(random_quantized(el, 0, 32, True, ShiftMode.DYNAMIC, 8), 8)
    sess = session(write_simulation_model(prepared, [(el, ql)], {}, mode="mask", float_exact=True))
    x = random_input(input_shape(prepared), True, True, 2)
    masks = [np.arange(ql.group_count) < k for k in range(ql.group_count + 1)]
    masks += [np.array([False, True, False]), np.array([True, False, True])]
    for mask in masks:
        y = sess.run(None, {"x": x, mask_input_name(0): mask})[0]
        order = np.concatenate([np.flatnonzero(mask), np.flatnonzero(~mask)])
        regrouped = _groups_first(ql, order)
        regrouped.group_bias_shift = ql.group_bias_shift[order]
        want = reference.layer_forward(regrouped, x, int(mask.sum()) * 32)[1]
        np.testing.assert_allclose(y, want, rtol=0, atol=1e-5, err_msg=str(mask))


def test_no_correction_keeps_the_constant_bias():
    """Without a shift the epilogue is one constant, no Gather: the graph is what it was."""
    prepared, (el,) = eligible_of(M.conv_geometry(c_in=64, c_out=24, hw=6, kernel=1, strides=(1, 1),
                                                  pads=(0, 0, 0, 0), dilations=(1, 1)), 32)
    ql = random_quantized(el, 0, 32, True, ShiftMode.DYNAMIC, 1)
    plain = [n.op_type for n in write_simulation_model(prepared, [(el, ql)], {}).graph.node]
    rungs = [n.op_type for n in write_simulation_model(prepared, [(el, with_rungs(ql, 1))], {}).graph.node]
    assert len(rungs) - len(plain) == 1  # one Gather of the bias row by the layer's rung (simulate_layers._bias)
    assert rungs.count("Gather") - plain.count("Gather") == 1
