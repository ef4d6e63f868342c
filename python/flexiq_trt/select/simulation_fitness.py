"""The search's fitness and held-out guard, both on the mask-mode float-exact simulation.

The guard uses calibration samples the fitness never sees (docs/design.md §2: a search fits its
calibration set unless validated elsewhere); the report's evaluation set is never touched here.
"""

from __future__ import annotations

import numpy as np
import onnx

from flexiq_trt.calibration.feeds import FeedSet
from flexiq_trt.log import get_logger
from flexiq_trt.quantization.stage import QuantizedRecord
from flexiq_trt.select.evaluator import MaskFitnessEvaluator

_log = get_logger(__name__)

MIN_GUARD_SAMPLES = 8


def split_fitness_guard(n_total: int, fitness_samples: int, guard_samples: int, reserve_guard: bool) -> tuple[int, int]:
    """(samples for the fitness, samples for the guard; 0 = no guard) out of `n_total` calibration samples.

    The guard takes what the fitness leaves, up to `guard_samples`. When that is fewer than
    MIN_GUARD_SAMPLES and `reserve_guard` is set (a search that needs the guard), a quarter of the
    set (at least MIN_GUARD_SAMPLES) is held back from the fitness instead: a search without a guard
    fits its calibration samples, and on 64 calibration crops of ImageNet-class CNNs it chose worse
    sets than the greedy order it starts from (docs/selection.md, "Small calibration sets").
    """
    n_fit = min(fitness_samples, n_total)
    if guard_samples < MIN_GUARD_SAMPLES:
        return n_fit, 0
    if n_total - n_fit < MIN_GUARD_SAMPLES and reserve_guard and n_total >= 2 * MIN_GUARD_SAMPLES:
        n_fit = n_total - max(MIN_GUARD_SAMPLES, n_total // 4)
    rest = n_total - n_fit
    return n_fit, (min(guard_samples, rest) if rest >= MIN_GUARD_SAMPLES else 0)


def build_fitness(prepared: onnx.ModelProto, records: list[QuantizedRecord], feeds: FeedSet,
                  fitness_samples: int, guard_samples: int,
                  reserve_guard: bool = False) -> tuple[MaskFitnessEvaluator, MaskFitnessEvaluator | None]:
    """(fitness on up to `fitness_samples` calibration samples, guard on up to `guard_samples` others or None).

    `reserve_guard`: the selector is a search that needs the guard, so hold back part of a small
    calibration set for it (`split_fitness_guard`) and warn when none can be made.
    """
    from flexiq_trt.graph_passes.simulate_layers import write_simulation_model

    pairs = [(rec.eligible, rec.layer) for rec in records]
    sim = write_simulation_model(prepared, pairs, {}, mode="mask", float_exact=True).SerializeToString()
    merged = {k: np.concatenate([b[k] for b in feeds.batches]) for k in feeds.batches[0]}
    n_total = next(iter(merged.values())).shape[0]
    # Calibration files are often ordered by source (image, class, recording): shuffle once, seeded,
    # so the fitness set spans every source instead of the first few (more varied data, docs/design.md §2).
    order = np.random.default_rng(0).permutation(n_total)
    merged = {k: v[order] for k, v in merged.items()}
    n_fit, n_hold = split_fitness_guard(n_total, fitness_samples, guard_samples, reserve_guard)
    if n_fit < min(fitness_samples, n_total):
        _log.info("%d calibration samples: %d for the search's fitness, %d held back for its guard",
                  n_total, n_fit, n_hold)
    fit = MaskFitnessEvaluator(sim, {k: v[:n_fit] for k, v in merged.items()})
    hold = None
    if n_hold:
        hold = MaskFitnessEvaluator(sim, {k: v[n_fit:n_fit + n_hold] for k, v in merged.items()})
    elif reserve_guard:  # a search without its guard (greedy's sensitivities need none: no warning)
        if guard_samples < MIN_GUARD_SAMPLES:
            _log.warning("guard_samples=%d (< %d): the search runs without a held-out guard", guard_samples,
                         MIN_GUARD_SAMPLES)
        else:
            _log.warning("only %d calibration samples: the search runs without a held-out guard", n_total)
    return fit, hold
