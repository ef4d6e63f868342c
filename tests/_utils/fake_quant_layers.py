"""Small quantized layers in a selected group order, and the check that a float module computes one exactly.

Shared by the fake-quant tests (finetune/fake_quant.py) and the learned-rounding tests
(finetune/rounding_layer.py): a Conv (1x1; 3x3 strided, padded, dilated) or Gemm layer quantized
from random weights and inputs, with bias rungs, its groups in a non-base order.
"""

from __future__ import annotations

import numpy as np
import torch

from flexiq_trt.plugin_spec import Activation
from flexiq_trt.quantization import reference
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.quantization.group_stats import GroupStatsObserver
from flexiq_trt.quantization.layer import ConvGeometry
from flexiq_trt.quantization.quantize_layer import LayerSource, quantize_layer, reorder_groups
from flexiq_trt.quantization.stage import QuantizedRecord
from flexiq_trt.quantization.weights import base_channel_order
from flexiq_trt.select.stage import SelectedRecord

RANK = [1, 0, 2]  # the selected group order: the padded group stays last (docs/design.md §2.4)
GEOMETRIES = {
    "gemm": None,
    "conv1x1": ConvGeometry((1, 1), (1, 1), (0, 0, 0, 0), (1, 1)),
    "conv3x3_s2_pad_dil": ConvGeometry((3, 3), (2, 1), (1, 0, 2, 1), (1, 2)),
}
C_IN, G = 80, 32  # C_pad 96: three groups, the last one padded


def selected_layer(kind: str, signed: bool, act_shift: str, seed: int = 0, rounding: str = "plain"):
    """A `rounding`-rounded layer with bias rungs, its groups in a non-base order; its float source and input."""
    rng = np.random.default_rng(seed)
    geo = GEOMETRIES[kind]
    conv = geo is not None
    w = rng.normal(size=(12, C_IN, *geo.kernel_shape) if conv else (12, C_IN)).astype(np.float32)
    x = (rng.normal(size=(3, C_IN, 9, 9)) if conv else rng.normal(size=(2, 30, C_IN))).astype(np.float32)
    x *= np.linspace(0.05, 3, C_IN).reshape((1, C_IN, 1, 1) if conv else (1, 1, C_IN)).astype(np.float32)
    if not signed:
        x = np.abs(x) + np.float32(0.2)
    act = Activation.HARD_SWISH if conv else Activation.NONE
    src = LayerSource("l", conv, w, rng.normal(size=12).astype(np.float32), geo, act, 0.0, 0.0, not signed)
    ch_range = np.abs(np.moveaxis(x, 1 if conv else -1, 0)).reshape(C_IN, -1).max(axis=1)
    order = base_channel_order(ch_range, G)
    s_a = float(np.abs(x).max() / (127 if signed else 255)) * 0.8  # some codes saturate
    obs = GroupStatsObserver(order, C_IN, G, s_a, signed, geo, max_rows_per_batch=64).with_code_sums()
    obs.update(x)
    stats = obs.result()
    config = QuantConfig(weight_rounding=rounding, act_shift=act_shift)
    result = quantize_layer(src, 0, order, s_a, stats, config)
    final = reorder_groups(result.layer, RANK)
    rec = SelectedRecord(QuantizedRecord(None, src, order, stats, result), final)
    return rec, x


def assert_same_layer(mod: torch.nn.Module, layer, x: np.ndarray) -> None:
    """The module's float64 accumulator equals the reference's int32 one at several n4; outputs close."""
    xt = torch.from_numpy(x.astype(np.float64))
    for n4 in (0, G, 2 * G, 3 * G, 50):  # 50 rounds down to one group (docs/design.md §2.4)
        acc_ref, y_ref = reference.layer_forward(layer, x, n4)
        mod.n4 = n4
        with torch.no_grad():
            acc, _ = mod.accumulate(xt)
            y = mod(xt).numpy()
        np.testing.assert_array_equal(acc.numpy(), acc_ref.astype(np.float64), err_msg=f"n4 {n4}")
        tol = 1e-5 * float(np.abs(y_ref).max())
        np.testing.assert_allclose(y, y_ref, rtol=0, atol=tol, err_msg=f"n4 {n4}")
