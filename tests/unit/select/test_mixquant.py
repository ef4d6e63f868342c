from fractions import Fraction

import numpy as np
import pytest
from _select_helpers import make_problem

from flexiq_trt.errors import ConfigError
from flexiq_trt.report.writer import mixquant_section
from flexiq_trt.select.base import LayerGroups, SelectionProblem
from flexiq_trt.select.config import SearchConfig
from flexiq_trt.select.mixquant import (
    MixQuantSelector,
    allocate,
    bits_for_qem,
    mse_table,
    qem_threshold_4bit,
    quantize_uniform,
    weight_mse,
)


def _hand_mse(t: Fraction, bits: int) -> float:
    """Row [1, t]: scale 1/qmax, the 1 is exact, t goes to the nearest level (no ties for t=3/10)."""
    qmax = 2 ** (bits - 1) - 1
    q = round(t * qmax)
    return float((Fraction(q, qmax) - t) ** 2 / 2)


def test_uniform_quantizer_on_hand_worked_values():
    w = np.array([[1.0, 0.3]])
    # 4-bit: levels k/7, 0.3 -> 2/7 (error 0.1/7); 8-bit: levels k/127, 0.3 -> 38/127 (error 0.1/127)
    np.testing.assert_allclose(quantize_uniform(w, 4), [[1.0, 2 / 7]])
    np.testing.assert_allclose(quantize_uniform(w, 8), [[1.0, 38 / 127]])
    assert weight_mse(w, 4) == pytest.approx((0.1 / 7) ** 2 / 2, rel=1e-9)
    assert weight_mse(w, 8) == pytest.approx((0.1 / 127) ** 2 / 2, rel=1e-9)
    for b in range(2, 9):
        assert weight_mse(w, b) == pytest.approx(_hand_mse(Fraction(3, 10), b), rel=1e-9)


def test_quantizer_is_per_output_channel():
    w = np.array([[1.0, 0.3], [2.0, 0.6], [0.0, 0.0]])
    single = weight_mse(np.array([[1.0, 0.3]]), 4)
    # row 2 is row 1 doubled (4x the squared error), row 3 is exact
    assert weight_mse(w, 4) == pytest.approx((single * 2 + single * 2 * 4 + 0) / 6, rel=1e-9)


def test_rule_picks_lowest_bitwidth_within_qem():
    table = mse_table(np.array([[1.0, 0.3]]))
    r4 = (127 / 7) ** 2  # MSE_4 / MSE_8 = 329.2: reaching 4 bits takes QEM in the hundreds
    assert qem_threshold_4bit(table) == pytest.approx(r4, rel=1e-9)
    # 0.3 at 5 bits lands on 4/15 or 5/15 (error 1/30): worse than 4 bits; 6 bits: 9/31, error 0.3/31
    r6 = (0.3 / 31 / (0.1 / 127)) ** 2
    assert bits_for_qem(table, 1.0) == 8
    assert bits_for_qem(table, r6 * 1.001) == 6
    assert bits_for_qem(table, r6 * 0.999) == 7
    assert bits_for_qem(table, r4 * 1.001) == 4
    r3 = (127 / 3) ** 2  # 0.3 -> 1/3 at 3 bits
    assert bits_for_qem(table, r3 * 1.001) == 3
    assert bits_for_qem(table, 1e9) == 2
    with pytest.raises(ConfigError, match="QEM"):
        bits_for_qem(table, 0.5)


def _layer(name, li, w, groups=2):
    return LayerGroups(name, li, np.full(groups, 100.0), np.ones(groups), np.ones(groups), weight_float=w)


def test_selector_orders_whole_layers_by_threshold_and_allocation_matches():
    rng = np.random.default_rng(0)
    layers = [_layer("gauss", 0, rng.normal(0, 1, (16, 64))),
              _layer("hand", 1, np.array([[1.0, 0.3]] * 4), groups=3),
              _layer("exact", 2, np.array([[1.0, -1.0, 0.0]] * 4))]
    p = SelectionProblem(layers, ladder=(0.5,))
    order = MixQuantSelector().select(p)
    order.validate(p)
    thresholds = [qem_threshold_4bit(mse_table(lg.weight_float)) for lg in layers]
    expected_layers = list(np.argsort(thresholds, kind="stable"))
    assert expected_layers[0] == 2  # exactly representable: 4-bit from QEM 1
    assert [li for li, _ in order.items] == [li for li in expected_layers for _ in range(layers[li].group_count)]
    assert [e["layer"] for e in order.log if "layer" in e] == [layers[i].name for i in expected_layers]
    alloc = allocate(p, (127 / 7) ** 2 * 1.001)
    assert alloc.bits["hand"] == 4 and alloc.bits["exact"] == 2
    assert alloc.ratio_4bit >= (200 + 300) / 700 - 1e-12


def test_selector_needs_float_weights():
    p = make_problem()
    p.layers[1].weight_float = None
    with pytest.raises(ConfigError, match="layer1"):
        MixQuantSelector().select(p)


def test_selector_reports_its_own_allocation_per_qem():
    rng = np.random.default_rng(1)
    layers = [_layer("gauss", 0, rng.normal(0, 1, (16, 64))), _layer("hand", 1, np.array([[1.0, 0.3]] * 4)),
              _layer("exact", 2, np.array([[1.0, -1.0, 0.0]] * 4))]
    p = SelectionProblem(layers, ladder=(0.5,))
    r4 = (127 / 7) ** 2
    order = MixQuantSelector(SearchConfig(mixquant_qems=(1.0, r4 * 1.001, 1e9))).select(p)
    sweep = [e for e in order.log if e.get("event") == "mixquant_allocation"]
    assert [e["qem"] for e in sweep] == [1.0, r4 * 1.001, 1e9]
    for e in sweep:
        assert e["bits"] == allocate(p, e["qem"]).bits
    assert sweep[0]["bits"] == {"gauss": 8, "hand": 8, "exact": 2}  # QEM 1: only exact weights drop bits
    assert sweep[1]["bits"]["hand"] == 4 and sweep[2]["bits"] == {"gauss": 2, "hand": 2, "exact": 2}
    assert sweep[2]["ratio_4bit"] == 1.0 and sweep[2]["mean_bits"] == 2.0
    md = "\n".join(mixquant_section(order.log))
    assert "| hand | 329.2 | 8 | 4 | 2 |" in md and "| 1e+09 | 2.00 | 100.0% |" in md


def test_qems_below_one_are_refused():
    with pytest.raises(ConfigError, match="mixquant_qems"):
        SearchConfig(mixquant_qems=(0.5,))
