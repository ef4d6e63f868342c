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
    """Fitness (distance to INT8 at the output) with one layer fully 4-bit, for every layer.

    With the mask evaluator's `prefix_runner` the layers are measured in model order around the
    INT8 model: everything before layer i is the INT8 model's computation, so the values crossing
    the cut before layer i come from those before layer i-1 through the nodes in between
    (`select/prefix_split.py`), and each measurement runs only the rest of the graph. The distances
    are the same numbers as whole runs give (tests/unit/select/test_sensitivity.py); on a
    transformer, whose layers all take about the same share of the work, this halves the cost.
    """
    out = np.zeros(len(problem.layers))
    int8 = [np.zeros(lg.group_count, dtype=bool) for lg in problem.layers]
    chained = all(hasattr(fitness, a) for a in ("prefix_runner", "raw_distances", "release_prefix"))
    for i in progress(range(len(problem.layers)), total=len(problem.layers), desc="layer sensitivity"):
        masks = [m.copy() for m in int8]
        masks[i][:] = True
        if chained:
            run = fitness.prefix_runner(i, int8)  # type: ignore[attr-defined]
            out[i] = float(np.mean(fitness.raw_distances(run(masks))))  # type: ignore[attr-defined]
        else:
            out[i] = float(fitness(masks))
    if chained:
        fitness.release_prefix()  # type: ignore[attr-defined]
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
