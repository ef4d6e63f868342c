"""Python API mirroring the CLI: `convert`, `compare`, `ratio_vector`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np

from flexiq_trt.calibration.config import CalibConfig
from flexiq_trt.conversion import ConvertConfig
from flexiq_trt.finetune.config import BlockRoundingConfig, FinetuneConfig, RefineConfig
from flexiq_trt.pipeline.convert import ConvertResult, run_convert, validate_inputs
from flexiq_trt.quantization.config import QuantConfig
from flexiq_trt.ratios import ratio_vector
from flexiq_trt.report.compare import CompareConfig, compare_with_polygraphy
from flexiq_trt.select.config import SearchConfig

__all__ = ["convert", "compare", "ratio_vector", "ConvertConfig", "CalibConfig", "QuantConfig", "SearchConfig",
           "FinetuneConfig", "BlockRoundingConfig", "RefineConfig"]


def convert(model: str | Path, calib: str | None = None, output_dir: str | Path | None = None, *,
            calib_config: CalibConfig | None = None, quant: QuantConfig | None = None,
            search: SearchConfig | None = None, config: ConvertConfig | None = None,
            refine: RefineConfig | None = None) -> ConvertResult:
    """Convert an ONNX model to FlexiQ (artifacts + report); `calib` overrides `calib_config.data`.

    `refine` turns on what runs after selection: `RefineConfig(finetune=FinetuneConfig(enabled=True))`
    distils the layers to the FP32 model, `block_rounding=BlockRoundingConfig(enabled=True)` learns
    the 4-bit codes' rounding block by block; both need PyTorch, checked here so a missing extra
    fails before calibration.
    """
    calib_config = calib_config or CalibConfig()
    if calib is not None:
        calib_config = replace(calib_config, data=str(calib))
    config = config or ConvertConfig()
    if output_dir is not None:
        config = replace(config, output_dir=str(output_dir))
    validate_inputs(Path(model), calib_config)
    refine = refine or RefineConfig()
    refine.require_torch()
    return run_convert(model, calib_config, quant, search, config, refine)


def compare(original: str | Path, simulation: str | Path, feeds: Iterable[dict[str, np.ndarray]],
            ratio: float = 0.5, config: CompareConfig | None = None) -> bool:
    """Polygraphy comparison of the original model and the simulation ONNX at `ratio` (True: all match)."""
    config = replace(config or CompareConfig(), ratio=ratio)
    return compare_with_polygraphy(Path(original), Path(simulation), feeds, config)
