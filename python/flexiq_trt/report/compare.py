"""Polygraphy comparison of the original model with the simulation ONNX at a chosen ratio (CPU).

The simulation takes `flexiq_max_4bit_ch` as an extra input; we pin it to the ratio's vector as an
initializer so both models have identical inputs and Polygraphy's own runners, data loader,
comparator and tolerances apply unchanged — the output is what a Polygraphy user already reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

from flexiq_trt.errors import ModelError
from flexiq_trt.plugin_spec import RUNTIME_INPUT
from flexiq_trt.ratios import check_ratio, load_ratio_table


@dataclass(frozen=True)
class CompareConfig:
    """Tolerances and data for `flexiq_trt compare` (Polygraphy CompareFunc.simple semantics)."""

    ratio: float = 0.5
    atol: float = 1e-1
    rtol: float = 1e-1
    check_error_stat: str = "median"
    iterations: int = 8


def pin_ratio(sim_model: onnx.ModelProto, vector: np.ndarray) -> onnx.ModelProto:
    """A copy of the simulation model whose runtime input is a constant (the given int32 [L] vector)."""
    pinned = onnx.ModelProto()
    pinned.CopyFrom(sim_model)
    inputs = [i for i in pinned.graph.input if i.name == RUNTIME_INPUT]
    if not inputs:
        raise ModelError(f"simulation model has no {RUNTIME_INPUT!r} input: not a FlexiQ simulation ONNX")
    pinned.graph.input.remove(inputs[0])
    pinned.graph.initializer.append(onnx.numpy_helper.from_array(vector.astype(np.int32), RUNTIME_INPUT))
    return pinned


def compare_with_polygraphy(original: Path, simulation: Path, feeds: Iterable[dict[str, np.ndarray]],
                            config: CompareConfig) -> bool:
    """Run both models with Polygraphy's ONNX-Runtime runners and compare; True when all outputs match."""
    from polygraphy.backend.onnxrt import OnnxrtRunner, SessionFromOnnx
    from polygraphy.comparator import Comparator, CompareFunc

    ratio = check_ratio(config.ratio)
    sim = onnx.load(str(simulation))
    vector = load_ratio_table(sim).vector(ratio)
    pinned = pin_ratio(sim, vector).SerializeToString()
    runners = [
        OnnxrtRunner(SessionFromOnnx(str(original), providers=["CPUExecutionProvider"]), name="fp32-original"),
        OnnxrtRunner(SessionFromOnnx(pinned, providers=["CPUExecutionProvider"]), name=f"flexiq-sim@{ratio:.2f}"),
    ]
    data = list(feeds)[: config.iterations]
    results = Comparator.run(runners, data_loader=data)
    func = CompareFunc.simple(atol=config.atol, rtol=config.rtol, check_error_stat=config.check_error_stat)
    return bool(Comparator.compare_accuracy(results, compare_func=func))
