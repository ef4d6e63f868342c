"""Calibrate the per-group error scores with measured per-layer sensitivities.

The analytic score (quantize_layer) estimates each group's error *at the layer's output*,
normalised by that layer's output energy; it cannot see how much of that error survives to the
network output. One fitness evaluation per layer — only that layer fully 4-bit — measures it.
Each group then gets ``layer sensitivity × its share of the layer's analytic score``, an additive
model of the network-level error that greedy ordering and the search's seeds both use.
"""

from __future__ import annotations

import numpy as np

from flexiq_trt.log import get_logger, progress, stage
from flexiq_trt.select.base import Fitness, SelectionProblem

_log = get_logger(__name__)


def layer_sensitivities(problem: SelectionProblem, fitness: Fitness) -> np.ndarray:
    """Fitness (distance to INT8 at the output) with one layer fully 4-bit, for every layer."""
    out = np.zeros(len(problem.layers))
    for i in progress(range(len(problem.layers)), total=len(problem.layers), desc="layer sensitivity"):
        masks = [np.zeros(lg.group_count, dtype=bool) for lg in problem.layers]
        masks[i][:] = True
        out[i] = float(fitness(masks))
    return out


def calibrate_scores(problem: SelectionProblem, fitness: Fitness) -> np.ndarray:
    """Replace every layer's error scores by sensitivity-weighted shares (in place); returns sensitivities."""
    with stage(f"measure layer sensitivities ({len(problem.layers)} evaluations)", _log):
        sens = layer_sensitivities(problem, fitness)
    for lg, s in zip(problem.layers, sens, strict=True):
        raw = np.asarray(lg.error_score, dtype=np.float64)
        share = raw / raw.sum() if raw.sum() > 0 else np.full(raw.shape, 1.0 / raw.size)
        lg.extra["analytic_error_score"] = raw
        lg.extra["layer_sensitivity"] = float(s)
        lg.error_score = s * share
    _log.info("layer sensitivities (distance to INT8 with one layer fully 4-bit): min %.3g, median %.3g, max %.3g",
              sens.min(), float(np.median(sens)), sens.max())
    return sens
