"""How the calibration samples are split between the search's fitness and its held-out guard."""

import pytest
from _utils.configs import NO_BLOCK_ROUNDING

from flexiq_trt.select.simulation_fitness import MIN_GUARD_SAMPLES, split_fitness_guard


@pytest.mark.parametrize("n_total, reserve, expected", [
    (400, False, (64, 256)),  # plenty: the fitness takes its 64, the guard up to 256 of the rest
    (100, True, (64, 36)),  # enough beyond the fitness: nothing is held back from it
    (64, False, (64, 0)),  # no surplus and no reservation (greedy's sensitivities): no guard
    (64, True, (48, 16)),  # no surplus, a search: a quarter held back for the guard
    (40, True, (30, 10)),
    (20, True, (12, MIN_GUARD_SAMPLES)),  # the guard never gets fewer than MIN_GUARD_SAMPLES
    (15, True, (15, 0)),  # too few to split: the search runs without a guard (and warns)
])
def test_split(n_total, reserve, expected):
    n_fit, n_hold = split_fitness_guard(n_total, 64, 256, reserve)
    assert (n_fit, n_hold) == expected
    assert n_fit + n_hold <= n_total


def test_guard_switched_off_keeps_every_sample_for_the_fitness():
    assert split_fitness_guard(64, 64, 0, True) == (64, 0)


def test_search_on_a_small_calibration_set_is_guarded(tmp_path):
    """32 calibration samples and the default 64 fitness samples: the search still gets a guard."""
    import json

    import numpy as np
    import onnx
    from _utils import models

    import flexiq_trt
    from flexiq_trt.conversion import ConvertConfig
    from flexiq_trt.select.config import SearchConfig

    onnx.save(models.residual_block(c=64, hw=8), tmp_path / "res.onnx")
    np.savez(tmp_path / "c.npz", x=np.random.default_rng(3).normal(size=(40, 64, 8, 8)).astype(np.float32))
    flexiq_trt.convert(tmp_path / "res.onnx", calib=str(tmp_path / "c.npz"), output_dir=tmp_path / "o",
                       config=ConvertConfig(selector="evolutionary", ort_baseline=False, baselines=False),
                       search=SearchConfig(preset="fast"), refine=NO_BLOCK_ROUNDING)
    results = [e for e in json.loads((tmp_path / "o/report.json").read_text())["search_log"]
               if e.get("event") == "ratio_result"]
    assert results and all(e["holdout_fitness_greedy"] is not None for e in results)
